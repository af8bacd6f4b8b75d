using Microsoft.ML.Tokenizers;

namespace BatchRender.Model.Tokenizers;

/// <summary>
/// Hunyuan-DiT's second tokenizer (HF T5Tokenizer over mT5's spiece.model) through Microsoft.ML.Tokenizers'
/// SentencePieceTokenizer: pieces, then &lt;/s&gt;, then &lt;pad&gt; up to MaxLength, with attention mask; no BOS. Truncation
/// keeps &lt;/s&gt;, as HF does (ML's own maxTokenCount would drop it): encode without EOS, cut to MaxLength - 1, append EOS.
/// </summary>
public sealed class MT5TextTokenizer : ITextTokenizer
{
    public const int DefaultMaxLength = 256;

    public MT5TextTokenizer(byte[] sentencePieceModel, TokenizerConfig config, int maxLength = DefaultMaxLength, string source = "spiece.model")
    {
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "must be at least 1");
        byte[] model = sentencePieceModel;
        try
        {
            // T5 models have no BOS piece (bos_id -1), which ML's constructor cannot index: point it at <unk>, an
            // existing piece that is special already. BOS is never added, so no id changes.
            if (SentencePieceModelPatch.ReadBosId(model) < 0)
                model = SentencePieceModelPatch.WithBosId(model, SentencePieceModelPatch.ReadUnkId(model));
            using var stream = new MemoryStream(model, writable: false);
            Tokenizer = SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"{source}: cannot load the SentencePiece model: {e.Message}", e);
        }
        MaxLength = maxLength;
        EosId = Tokenizer.EndOfSentenceId;
        PadId = ResolvePadId(config, source);
    }

    /// <summary>Loads a diffusers tokenizer_2/ folder: spiece.model plus tokenizer_config.json / special_tokens_map.json.</summary>
    /// <param name="maxLength">Padding length; null = the config's model_max_length, else 256.</param>
    public static MT5TextTokenizer FromDirectory(string directory, int? maxLength = null)
    {
        var modelPath = Path.Combine(directory, "spiece.model");
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"mT5 tokenizer: spiece.model not found in {directory}", modelPath);
        var config = TokenizerConfig.Load(directory);
        return new MT5TextTokenizer(File.ReadAllBytes(modelPath), config, maxLength ?? config.ModelMaxLength ?? DefaultMaxLength, modelPath);
    }

    public SentencePieceTokenizer Tokenizer { get; }
    public int MaxLength { get; }
    public int EosId { get; }
    public int PadId { get; }

    public TokenizedText Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var pieces = Tokenizer.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false, considerPreTokenization: true, considerNormalization: true);
        var ids = new List<int>(Math.Min(pieces.Count, MaxLength - 1) + 1);
        for (int i = 0; i < pieces.Count && i < MaxLength - 1; i++) ids.Add(pieces[i]);
        ids.Add(EosId);
        return TextTokenizerExtensions.Pad(ids, MaxLength, PadId);
    }

    private int ResolvePadId(TokenizerConfig config, string source)
    {
        string padToken = config.PadToken ?? "<pad>";
        if (Tokenizer.Vocabulary.TryGetValue(padToken, out int id)) return id;
        if (config.PadToken is null) return 0; // T5's convention: pad is piece 0
        throw new InvalidDataException($"{source}: pad token '{padToken}' from the tokenizer config is not a piece of the model");
    }
}
