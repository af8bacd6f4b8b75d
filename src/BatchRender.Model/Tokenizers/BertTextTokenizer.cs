using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace BatchRender.Model.Tokenizers;

/// <summary>
/// Hunyuan-DiT's first tokenizer (HF BertTokenizer over a Chinese/English vocab.txt) through Microsoft.ML.Tokenizers'
/// WordPiece BertTokenizer: [CLS] tokens [SEP] [PAD]..., truncated to MaxLength keeping [SEP], with attention mask.
/// Input fixes make ML's basic tokenizer agree with HF's on text ML treats differently (see <see cref="CleanLikeHf"/>),
/// and accents are stripped when lower-casing (HF's default strip_accents rule).
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
        UnknownToken = options.UnknownToken;
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
    public string UnknownToken { get; private init; } = "[UNK]";

    /// <summary>
    /// HF BasicTokenizer's text cleaning, done before ML sees the text where ML would differ: whitespace (tab, newline,
    /// CR, any Zs) becomes a space (ML deletes tab/newline/CR, gluing words); NUL, U+FFFD and control/format characters
    /// (category C*, e.g. U+200B) are removed (ML splits on some); and a word holding a character outside the BMP (an
    /// emoji, a CJK extension ideograph), which ML silently drops, becomes the unknown token as HF's WordPiece makes it.
    /// A "word" ends at whitespace, punctuation and CJK characters, HF's pre-tokenization boundaries.
    /// </summary>
    public static string CleanLikeHf(string text, string unknownToken = "[UNK]")
    {
        var output = new StringBuilder(text.Length + 8);
        var word = new StringBuilder();
        bool wordHasAstral = false;
        void EndWord()
        {
            output.Append(wordHasAstral ? $" {unknownToken} " : word.ToString());
            word.Clear();
            wordHasAstral = false;
        }
        foreach (var rune in text.EnumerateRunes())
        {
            var category = Rune.GetUnicodeCategory(rune);
            bool whitespace = rune.Value is ' ' or '\t' or '\n' or '\r' || category == UnicodeCategory.SpaceSeparator;
            if (!whitespace && (rune.Value is 0 or 0xFFFD || IsControl(category))) continue;
            if (whitespace || IsPunctuation(rune, category) || IsCjk(rune.Value))
            {
                EndWord();
                if (IsCjk(rune.Value) && rune.IsBmp == false) output.Append($" {unknownToken} ");
                else output.Append(whitespace ? " " : rune.ToString());
                continue;
            }
            word.Append(rune.ToString());
            wordHasAstral |= !rune.IsBmp;
        }
        EndWord();
        return output.ToString();
    }

    private static bool IsControl(UnicodeCategory c) => c is UnicodeCategory.Control or UnicodeCategory.Format
        or UnicodeCategory.OtherNotAssigned or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate;

    /// <summary>HF's _is_punctuation: ASCII symbols and every Unicode P* category.</summary>
    private static bool IsPunctuation(Rune r, UnicodeCategory c) =>
        r.Value is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126
        || c is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
            or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
            or UnicodeCategory.OtherPunctuation;

    /// <summary>HF's _is_chinese_char code point ranges.</summary>
    private static bool IsCjk(int cp) => cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF
        or >= 0x2A700 and <= 0x2B73F or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF
        or >= 0x2F800 and <= 0x2FA1F;

    public TokenizedText Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = Tokenizer.EncodeToIds(CleanLikeHf(text, UnknownToken), MaxLength, addSpecialTokens: true, out _, out _);
        return TextTokenizerExtensions.Pad(ids, MaxLength, Tokenizer.PaddingTokenId);
    }
}
