using System.Text.Json;
using System.Text.Json.Nodes;

namespace BatchRender.Training.Tokenizers;

public sealed record DemoTokenizerOptions
{
    /// <summary>Seeds the corpus' caption sample.</summary>
    public int Seed { get; init; } = 20261125;
    /// <summary>Captions sampled into the corpus, on top of every phrase of the caption tables.</summary>
    public int CorpusCaptions { get; init; } = 20000;
    public int BertMaxLength { get; init; } = 77;
    public int T5MaxLength { get; init; } = 256;
    public SentencePieceTrainOptions SentencePiece { get; init; } = new();
}

/// <summary>Where the builder wrote the two tokenizers, and their vocabulary sizes (for the text encoders' configs).</summary>
public sealed record DemoTokenizers(string BertDirectory, int BertVocabSize, string T5Directory, int T5VocabSize);

/// <summary>Builds the demo model's two tokenizers from the demo corpus, in the diffusers layout:
/// tokenizer/ (vocab.txt, tokenizer_config.json, special_tokens_map.json: BertTokenizer) and tokenizer_2/
/// (spiece.model, tokenizer_config.json, special_tokens_map.json: T5Tokenizer). Each folder is written beside its
/// final place and moved in whole, so a failed build leaves the previous tokenizers as they were.</summary>
public static class DemoTokenizerBuilder
{
    public static DemoTokenizers Build(string modelDirectory, DemoTokenizerOptions options, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(modelDirectory);
        var corpus = DemoCorpus.Lines(options.Seed, options.CorpusCaptions).ToList();

        // Train both before writing either, so a failure leaves the folder as it was.
        var vocab = WordPieceVocabularyBuilder.Build(corpus);
        var spm = options.SentencePiece with { UserDefinedSymbols = [.. options.SentencePiece.UserDefinedSymbols, .. DemoCorpus.ChineseAttributeWords()] };
        var model = SentencePieceTrainer.TrainUnigram(corpus, spm, cancellationToken);
        var bert = Publish(modelDirectory, "tokenizer", dir =>
        {
            WordPieceVocabularyBuilder.Write(vocab, Path.Combine(dir, "vocab.txt"));
            WriteJson(Path.Combine(dir, "tokenizer_config.json"), new JsonObject
            {
                ["tokenizer_class"] = "BertTokenizer", ["do_lower_case"] = true, ["tokenize_chinese_chars"] = true,
                ["strip_accents"] = null, ["model_max_length"] = options.BertMaxLength,
                ["cls_token"] = "[CLS]", ["sep_token"] = "[SEP]", ["pad_token"] = "[PAD]", ["unk_token"] = "[UNK]", ["mask_token"] = "[MASK]",
            });
            WriteJson(Path.Combine(dir, "special_tokens_map.json"), new JsonObject
            {
                ["cls_token"] = "[CLS]", ["sep_token"] = "[SEP]", ["pad_token"] = "[PAD]", ["unk_token"] = "[UNK]", ["mask_token"] = "[MASK]",
            });
        });

        var t5 = Publish(modelDirectory, "tokenizer_2", dir =>
        {
            File.WriteAllBytes(Path.Combine(dir, "spiece.model"), model);
            WriteJson(Path.Combine(dir, "tokenizer_config.json"), new JsonObject
            {
                ["tokenizer_class"] = "T5Tokenizer", ["model_max_length"] = options.T5MaxLength, ["extra_ids"] = 0,
                ["eos_token"] = "</s>", ["unk_token"] = "<unk>", ["pad_token"] = "<pad>",
            });
            WriteJson(Path.Combine(dir, "special_tokens_map.json"), new JsonObject
            {
                ["eos_token"] = "</s>", ["unk_token"] = "<unk>", ["pad_token"] = "<pad>",
            });
        });
        return new DemoTokenizers(bert, vocab.Count, t5, SentencePieceModelInfo.PieceCount(model));
    }

    static string Publish(string modelDirectory, string name, Action<string> write)
    {
        var final = Path.Combine(modelDirectory, name);
        var staging = Path.Combine(modelDirectory, $".{name}.building-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            write(staging);
            if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
            Directory.Move(staging, final);
            return final;
        }
        catch
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
            throw;
        }
    }

    static void WriteJson(string path, JsonObject json) =>
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
}
