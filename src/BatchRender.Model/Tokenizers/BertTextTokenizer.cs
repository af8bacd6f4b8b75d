using Microsoft.ML.Tokenizers;

namespace BatchRender.Model.Tokenizers;

/// <summary>
/// Hunyuan-DiT's first tokenizer (HF BertTokenizer over a Chinese/English vocab.txt) through Microsoft.ML.Tokenizers'
/// WordPiece BertTokenizer: [CLS] tokens [SEP] [PAD]..., truncated to MaxLength keeping [SEP], with attention mask.
/// Two input fixes make ML's basic tokenizer agree with HF's: tab/newline/CR become spaces (ML deletes them, which
/// would glue words together), and accents are stripped when lower-casing (HF's default strip_accents rule).
/// </summary>
public sealed class BertTextTokenizer : ITextTokenizer
{
    public const int DefaultMaxLength = 77;

    public BertTextTokenizer(Stream vocab, TokenizerConfig config, int maxLength = DefaultMaxLength, string source = "vocab.txt")
    {
        if (maxLength < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "BERT needs room for [CLS] and [SEP]");
        bool lowerCase = config.DoLowerCase ?? true;
        var options = new BertOptions
        {
            LowerCaseBeforeTokenization = lowerCase,
            IndividuallyTokenizeCjk = config.TokenizeChineseChars ?? true,
            RemoveNonSpacingMarks = config.StripAccents ?? lowerCase,
            ApplyBasicTokenization = true,
            SplitOnSpecialTokens = true,
            ClassificationToken = config.ClsToken ?? "[CLS]",
            SeparatorToken = config.SepToken ?? "[SEP]",
            PaddingToken = config.PadToken ?? "[PAD]",
            MaskingToken = config.MaskToken ?? "[MASK]",
            UnknownToken = config.UnkToken ?? "[UNK]",
        };
        try
        {
            Tokenizer = BertTokenizer.Create(vocab, options);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{source}: cannot build the BERT tokenizer: {e.Message}", e);
        }
        MaxLength = maxLength;
    }

    /// <summary>Loads a diffusers tokenizer/ folder: vocab.txt plus tokenizer_config.json / special_tokens_map.json.</summary>
    /// <param name="maxLength">Padding length; null = the config's model_max_length, else 77.</param>
    public static BertTextTokenizer FromDirectory(string directory, int? maxLength = null)
    {
        var vocabPath = Path.Combine(directory, "vocab.txt");
        if (!File.Exists(vocabPath)) throw new FileNotFoundException($"BERT tokenizer: vocab.txt not found in {directory}", vocabPath);
        var config = TokenizerConfig.Load(directory);
        using var vocab = File.OpenRead(vocabPath);
        return new BertTextTokenizer(vocab, config, maxLength ?? config.ModelMaxLength ?? DefaultMaxLength, vocabPath);
    }

    public BertTokenizer Tokenizer { get; }
    public int MaxLength { get; }
    public int PadId => Tokenizer.PaddingTokenId;

    public TokenizedText Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = text.Replace('\t', ' ').Replace('\n', ' ').Replace('\r', ' ');
        var ids = Tokenizer.EncodeToIds(text, MaxLength, addSpecialTokens: true, out _, out _);
        return TextTokenizerExtensions.Pad(ids, MaxLength, Tokenizer.PaddingTokenId);
    }
}
