using BatchRender.Model.Tokenizers;
using TorchSharp;

namespace BatchRender.Model.Tests.Tokenizers;

public sealed class TokenizerTests : IDisposable
{
    // A small bilingual WordPiece vocabulary in the HF layout (specials first, "##" continuation pieces).
    private static readonly string[] Vocab =
    [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
        "a", "red", "fox", "run", "##s", "##ning", "cafe", "hello", "world", "the", "in", "snow", ",", ".", "!",
        "一", "只", "红", "色", "的", "狐", "狸", "在", "雪", "中", "奔", "跑", "。", "，",
    ];

    private readonly string _dir = Directory.CreateTempSubdirectory("br-tok-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static int Id(string token) => Array.IndexOf(Vocab, token) is var i and >= 0 ? i : throw new ArgumentException(token);

    private BertTextTokenizer Bert(string? tokenizerConfig = null, int? maxLength = null)
    {
        File.WriteAllLines(Path.Combine(_dir, "vocab.txt"), Vocab);
        if (tokenizerConfig is not null) File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), tokenizerConfig);
        return BertTextTokenizer.FromDirectory(_dir, maxLength);
    }

    private static int[] Expected(int length, int pad, params int[] ids) =>
        ids.Concat(Enumerable.Repeat(pad, length - ids.Length)).ToArray();

    [Fact]
    public void Bert_english_is_lower_cased_split_into_wordpieces_and_padded_to_77()
    {
        var t = Bert().Encode("A Red FOX runs, running!");
        Assert.Equal(77, t.InputIds.Length);
        Assert.Equal(Expected(77, 0, Id("[CLS]"), Id("a"), Id("red"), Id("fox"), Id("run"), Id("##s"), Id(","),
            Id("run"), Id("##ning"), Id("!"), Id("[SEP]")), t.InputIds);
        Assert.Equal(Expected(77, 0, Enumerable.Repeat(1, 11).ToArray()), t.AttentionMask);
        Assert.Equal(11, t.Length);
    }

    [Fact]
    public void Bert_splits_every_chinese_character_and_mixed_text()
    {
        var t = Bert().Encode("一只红色的狐狸在雪中奔跑。red fox");
        int[] expected = [Id("[CLS]"), .. "一只红色的狐狸在雪中奔跑。".Select(c => Id(c.ToString())), Id("red"), Id("fox"), Id("[SEP]")];
        Assert.Equal(Expected(77, 0, expected), t.InputIds);
        Assert.Equal(expected.Length, t.Length);
    }

    [Fact]
    public void Bert_strips_accents_and_treats_tabs_and_newlines_as_spaces_like_hf()
    {
        var tok = Bert();
        Assert.Equal(Expected(77, 0, Id("[CLS]"), Id("cafe"), Id("[SEP]")), tok.Encode("Café").InputIds);
        Assert.Equal(Expected(77, 0, Id("[CLS]"), Id("hello"), Id("world"), Id("fox"), Id("[UNK]"), Id("[SEP]")),
            tok.Encode("hello\tworld\r\nfox zebra").InputIds);
    }

    [Fact]
    public void Bert_handles_emoji_zero_width_and_control_characters_like_hf()
    {
        var tok = Bert();
        // HF: an emoji word is [UNK] (ML alone would drop it); a word glued to an emoji is [UNK] as a whole.
        Assert.Equal(Expected(77, 0, Id("[CLS]"), Id("a"), Id("[UNK]"), Id("fox"), Id("[SEP]")), tok.Encode("a \U0001F98A fox").InputIds);
        Assert.Equal(Expected(77, 0, Id("[CLS]"), Id("[UNK]"), Id(","), Id("red"), Id("[SEP]")), tok.Encode("fox\U0001F98A,red").InputIds);
        // HF removes U+200B and other format/control characters; a no-break space is whitespace.
        Assert.Equal(Expected(77, 0, Id("[CLS]"), Id("red"), Id("fox"), Id("[SEP]")), tok.Encode("r\u200Bed\u00A0fox\u0007").InputIds);
        // a CJK extension-B ideograph (outside the BMP) is its own token: unknown to this vocabulary
        Assert.Equal(Expected(77, 0, Id("[CLS]"), Id("红"), Id("[UNK]"), Id("色"), Id("[SEP]")), tok.Encode("红\U00020000色").InputIds);
    }

    [Fact]
    public void Bert_empty_prompt_is_cls_sep_and_padding()
    {
        var t = Bert().Encode("");
        Assert.Equal(Expected(77, 0, Id("[CLS]"), Id("[SEP]")), t.InputIds);
        Assert.Equal(2, t.Length);
    }

    [Fact]
    public void Bert_truncates_to_max_length_keeping_sep()
    {
        var t = Bert().Encode(string.Join(' ', Enumerable.Repeat("red fox", 60)));
        Assert.Equal(77, t.Length);
        Assert.Equal(Id("[CLS]"), t.InputIds[0]);
        Assert.Equal(Id("[SEP]"), t.InputIds[76]);
        Assert.Equal(Id("red"), t.InputIds[1]);
        Assert.Equal(Id("fox"), t.InputIds[74]); // 75 word tokens kept: red fox ... fox red
        Assert.Equal(Id("red"), t.InputIds[75]);
    }

    [Fact]
    public void Bert_reads_tokenizer_config_special_tokens_and_max_length()
    {
        var tok = Bert("""
            {"do_lower_case": false, "model_max_length": 12, "tokenize_chinese_chars": true,
             "cls_token": {"content": "[CLS]", "lstrip": false}, "sep_token": "[SEP]", "pad_token": "[PAD]",
             "unk_token": "[UNK]", "mask_token": "[MASK]", "tokenizer_class": "BertTokenizer"}
            """);
        Assert.Equal(12, tok.MaxLength);
        var t = tok.Encode("Red fox");
        Assert.Equal(Expected(12, 0, Id("[CLS]"), Id("[UNK]"), Id("fox"), Id("[SEP]")), t.InputIds); // case kept: "Red" is unknown
    }

    [Fact]
    public void Bert_batch_gives_int64_ids_and_mask_tensors()
    {
        var (ids, mask) = Bert(maxLength: 8).EncodeBatch(["red fox", ""]);
        Assert.Equal(new long[] { 2, 8 }, ids.shape);
        Assert.Equal(torch.ScalarType.Int64, ids.dtype);
        Assert.Equal(new long[] { Id("[CLS]"), Id("red"), Id("fox"), Id("[SEP]"), 0, 0, 0, 0 }, ids[0].data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 0, 0, 0, 0, 0, 0 }, mask[1].data<long>().ToArray());
    }

    [Fact]
    public void Bert_missing_vocab_names_the_file()
    {
        var e = Assert.Throws<FileNotFoundException>(() => BertTextTokenizer.FromDirectory(_dir));
        Assert.Contains("vocab.txt", e.Message);
    }

    // ---- mT5 SentencePiece (fixture trained by Fixtures/mt5-tiny/train.sh) ----

    private static string FixtureDir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "mt5-tiny");

    private MT5TextTokenizer MT5(int? maxLength = null)
    {
        File.Copy(Path.Combine(FixtureDir, "spiece.model"), Path.Combine(_dir, "spiece.model"), overwrite: true);
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), """
            {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>", "extra_ids": 0,
             "model_max_length": 1000000000000000019884624838656, "tokenizer_class": "T5Tokenizer"}
            """);
        return MT5TextTokenizer.FromDirectory(_dir, maxLength);
    }

    public static TheoryData<int> SampleLines => new() { 0, 1, 2, 3 };

    [Theory]
    [MemberData(nameof(SampleLines))]
    public void MT5_ids_match_spm_encode_then_eos_and_padding(int line)
    {
        var text = File.ReadAllLines(Path.Combine(FixtureDir, "samples.txt"))[line];
        var spm = File.ReadAllLines(Path.Combine(FixtureDir, "samples.ids"))[line]
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
        var t = MT5().Encode(text);
        Assert.Equal(256, t.InputIds.Length);
        Assert.Equal(Expected(256, 0, [.. spm, 1]), t.InputIds);
        Assert.Equal(spm.Length + 1, t.Length);
    }

    [Fact]
    public void MT5_truncation_keeps_eos_and_empty_text_is_eos_only()
    {
        var tok = MT5(maxLength: 6);
        var spm = File.ReadAllLines(Path.Combine(FixtureDir, "samples.ids"))[0]
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
        var t = tok.Encode(File.ReadAllLines(Path.Combine(FixtureDir, "samples.txt"))[0]);
        Assert.Equal([.. spm[..5], 1], t.InputIds);
        Assert.Equal([1, 1, 1, 1, 1, 1], t.AttentionMask);

        var empty = tok.Encode("");
        Assert.Equal([1, 0, 0, 0, 0, 0], empty.InputIds);
        Assert.Equal([1, 0, 0, 0, 0, 0], empty.AttentionMask);
    }

    [Fact]
    public void SentencePiece_patch_rewrites_only_bos_id()
    {
        var model = File.ReadAllBytes(Path.Combine(FixtureDir, "spiece.model"));
        Assert.Equal(-1, SentencePieceModelPatch.ReadBosId(model));
        Assert.Equal(2, SentencePieceModelPatch.ReadUnkId(model));
        var patched = SentencePieceModelPatch.WithBosId(model, 2);
        Assert.Equal(2, SentencePieceModelPatch.ReadBosId(patched));
        Assert.Equal(2, SentencePieceModelPatch.ReadUnkId(patched));
        // Setting it back restores the original bytes except for field order inside trainer_spec (bos_id moves last).
        var back = SentencePieceModelPatch.WithBosId(patched, -1);
        Assert.Equal(-1, SentencePieceModelPatch.ReadBosId(back));
        Assert.Equal(model.Length, back.Length);
    }

    [Fact]
    public void MT5_corrupt_model_is_a_clear_error()
    {
        File.WriteAllBytes(Path.Combine(_dir, "spiece.model"), [0x0a, 0xff, 0xff, 0x01]);
        var e = Assert.Throws<InvalidDataException>(() => MT5TextTokenizer.FromDirectory(_dir));
        Assert.Contains("spiece.model", e.Message);
    }
}
