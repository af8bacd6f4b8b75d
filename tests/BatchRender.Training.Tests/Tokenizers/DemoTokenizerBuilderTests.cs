using System.Diagnostics;
using BatchRender.Model.Tokenizers;
using BatchRender.Training.Dataset;
using BatchRender.Training.Tokenizers;

namespace BatchRender.Training.Tests.Tokenizers;

/// <summary>Builds the demo tokenizers once (spm_train runs as a process; test.sh installs Debian's sentencepiece)
/// and loads them with the model's own loaders, as the pipeline will.</summary>
public sealed class BuiltTokenizers : IDisposable
{
    public BuiltTokenizers()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("demo-tokenizers-").FullName;
        Result = DemoTokenizerBuilder.Build(Directory, new DemoTokenizerOptions { CorpusCaptions = 6000 });
    }

    public string Directory { get; }
    public DemoTokenizers Result { get; }
    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}

public class DemoTokenizerBuilderTests(BuiltTokenizers built) : IClassFixture<BuiltTokenizers>
{
    [Fact]
    public void Writes_the_diffusers_layout()
    {
        foreach (var file in new[] { "tokenizer/vocab.txt", "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json",
                     "tokenizer_2/spiece.model", "tokenizer_2/tokenizer_config.json", "tokenizer_2/special_tokens_map.json" })
            Assert.True(File.Exists(Path.Combine(built.Directory, file)), file);
        Assert.DoesNotContain(System.IO.Directory.GetDirectories(built.Directory), d => Path.GetFileName(d).StartsWith('.'));
        var vocab = File.ReadAllLines(Path.Combine(built.Directory, "tokenizer/vocab.txt"));
        Assert.Equal(built.Result.BertVocabSize, vocab.Length);
        Assert.Equal(vocab.Length, vocab.Distinct().Count());
        Assert.Equal(("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"), (vocab[0], vocab[100], vocab[101], vocab[102], vocab[103]));
        Assert.InRange(built.Result.T5VocabSize, 250, 1000); // spm stops below the target on a small corpus
        Assert.Equal(TokenizerConfig.Load(built.Result.T5Directory).ModelMaxLength, 256);
        Assert.Equal(TokenizerConfig.Load(built.Result.BertDirectory).ModelMaxLength, 77);
    }

    [Fact]
    public void Bert_tokenizer_loads_and_splits_chinese_per_character_without_unknowns()
    {
        var bert = BertTextTokenizer.FromDirectory(built.Result.BertDirectory);
        var en = bert.Encode("A large red star in the top left corner on a blue background");
        var zh = bert.Encode("蓝色背景左上角有一个大的红色五角星");
        Assert.Equal(77, en.InputIds.Length);
        Assert.Equal(101, en.InputIds[0]);
        Assert.Equal(102, en.InputIds[en.Length - 1]);
        Assert.Equal(0, en.InputIds[en.Length]);
        Assert.Equal(13 + 2, en.Length); // 13 words, each a whole-word piece
        Assert.Equal(17 + 2, zh.Length); // 17 characters, one token each
        var tokens = bert.Tokenizer.EncodeToTokens("红色五角星", out _).Select(t => t.Value).ToList();
        Assert.Equal(["红", "色", "五", "角", "星"], tokens);
        // Unseen English words fall back to characters and ## pieces, never [UNK].
        Assert.DoesNotContain(100, bert.Encode("A Purple Hexagon, 2 of them!").InputIds);
        var random = new Random(2);
        for (int i = 0; i < 300; i++)
        {
            var scene = SceneSampler.Still(random, 1 + i % 2, RenderStyle.InkWash);
            var caption = CaptionGenerator.Describe(scene, i % 2 == 0 ? Language.English : Language.Chinese, random, CaptionOptions.Complete);
            Assert.DoesNotContain(100, bert.Encode(caption).InputIds);
        }
    }

    [Fact]
    public void T5_tokenizer_loads_with_the_model_loader_and_matches_spm_encode()
    {
        var t5 = MT5TextTokenizer.FromDirectory(built.Result.T5Directory);
        var texts = new[]
        {
            "a large red star in the top left corner on a blue background",
            "蓝色背景左上角有一个大的红色五角星",
            "一朵黄色的花慢慢绽放，水墨风格",
            "A small green square moving from left to right",
            "右下角有一颗粉红色的小星星，背景是黑色",
        };
        var reference = SpmEncode(Path.Combine(built.Result.T5Directory, "spiece.model"), texts);
        for (int i = 0; i < texts.Length; i++)
        {
            var encoded = t5.Encode(texts[i]);
            Assert.Equal(256, encoded.InputIds.Length);
            Assert.Equal([.. reference[i], 1], encoded.InputIds.Take(encoded.Length).ToArray()); // pieces, then </s> = 1
            Assert.All(encoded.InputIds.Skip(encoded.Length), id => Assert.Equal(0, id));          // then <pad> = 0
            Assert.DoesNotContain(2, encoded.InputIds);                                               // no <unk>
        }
        // Attribute words are pieces of their own, so colour, shape and position compose.
        var pieces = t5.Tokenizer.EncodeToTokens("蓝色背景左上角有一个大的红色五角星", out _, addBeginningOfSentence: false, addEndOfSentence: false)
            .Select(t => t.Value.TrimStart('▁')).ToList();
        Assert.Contains("红色", pieces);
        Assert.Contains("五角星", pieces);
        Assert.Contains("左上角", pieces);
    }

    [Fact]
    public void Missing_spm_train_is_a_clear_error()
    {
        var e = Assert.Throws<InvalidOperationException>(() => SentencePieceTrainer.TrainUnigram(
            ["a red star"], new SentencePieceTrainOptions { Executable = "spm_train-that-does-not-exist" }));
        Assert.Contains("apt-get install sentencepiece", e.Message);
        var staging = System.IO.Directory.CreateTempSubdirectory("demo-tokenizers-failed-").FullName;
        try
        {
            Assert.Throws<InvalidOperationException>(() => DemoTokenizerBuilder.Build(staging, new DemoTokenizerOptions
            {
                CorpusCaptions = 10, SentencePiece = new SentencePieceTrainOptions { Executable = "spm_train-that-does-not-exist" },
            }));
            Assert.Empty(System.IO.Directory.GetFileSystemEntries(staging)); // nothing half-written
        }
        finally { System.IO.Directory.Delete(staging, recursive: true); }
    }

    static List<int[]> SpmEncode(string model, IReadOnlyList<string> texts)
    {
        var start = new ProcessStartInfo("spm_encode") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add($"--model={model}");
        start.ArgumentList.Add("--output_format=id");
        using var process = Process.Start(start)!;
        process.StandardInput.Write(string.Join("\n", texts) + "\n");
        process.StandardInput.Close();
        var lines = process.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        process.WaitForExit();
        return lines.Select(l => l.Split(' ').Select(int.Parse).ToArray()).ToList();
    }
}
