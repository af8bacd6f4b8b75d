using System.Globalization;
using System.Text;

namespace BatchRender.Training.Tokenizers;

/// <summary>Writes a BERT WordPiece vocab.txt for a corpus, laid out like Hugging Face's Chinese BERT vocabularies:
/// [PAD] = 0, [unused1..99], [UNK] = 100, [CLS] = 101, [SEP] = 102, [MASK] = 103; then every character (so any text
/// in the corpus' scripts tokenizes without [UNK]: Chinese is split one character per token, as BERT does), the
/// "##" continuation of every non-CJK character, and the corpus' words, most frequent first.</summary>
public static class WordPieceVocabularyBuilder
{
    public const string Pad = "[PAD]", Unknown = "[UNK]", Classification = "[CLS]", Separator = "[SEP]", Mask = "[MASK]";
    public const int PadId = 0, UnknownId = 100, ClassificationId = 101, SeparatorId = 102, MaskId = 103;

    // Characters every vocabulary gets, whether or not the corpus has them: lower-case ASCII, digits, punctuation.
    static readonly string BaseCharacters =
        "abcdefghijklmnopqrstuvwxyz0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" + "，。：；！？、（）";

    public static IReadOnlyList<string> Build(IEnumerable<string> corpus)
    {
        var words = new Dictionary<string, int>(StringComparer.Ordinal);
        var characters = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var line in corpus)
            foreach (var token in BasicTokens(line))
            {
                var info = StringInfo.GetTextElementEnumerator(token);
                while (info.MoveNext()) characters[info.GetTextElement()] = characters.GetValueOrDefault(info.GetTextElement()) + 1;
                if (token.Length > 1) words[token] = words.GetValueOrDefault(token) + 1;
            }
        foreach (var c in BaseCharacters) characters.TryAdd(c.ToString(), 0);

        var vocab = new List<string> { Pad };
        for (int i = 1; i < UnknownId; i++) vocab.Add($"[unused{i}]");
        vocab.AddRange([Unknown, Classification, Separator, Mask]);
        var ordered = characters.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Key).ToList();
        vocab.AddRange(ordered);
        vocab.AddRange(ordered.Where(c => !IsCjk(c[0]) && !IsPunctuation(c[0])).Select(c => "##" + c));
        vocab.AddRange(words.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Key)
            .Where(w => !characters.ContainsKey(w)));
        return vocab;
    }

    public static void Write(IReadOnlyList<string> vocab, string path) =>
        File.WriteAllText(path, string.Join("\n", vocab) + "\n", new UTF8Encoding(false));

    /// <summary>BERT's basic tokenization (do_lower_case, tokenize_chinese_chars): lower-case, strip accents, split on
    /// white space and punctuation, and put every CJK character on its own.</summary>
    public static IEnumerable<string> BasicTokens(string text)
    {
        var normalized = text.ToLowerInvariant().Normalize(NormalizationForm.FormD);
        var current = new StringBuilder();
        foreach (var c in normalized)
        {
            if (CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.NonSpacingMark) continue;
            if (char.IsWhiteSpace(c) || char.IsControl(c))
            {
                if (current.Length > 0) { yield return current.ToString(); current.Clear(); }
            }
            else if (IsPunctuation(c) || IsCjk(c))
            {
                if (current.Length > 0) { yield return current.ToString(); current.Clear(); }
                yield return c.ToString();
            }
            else current.Append(c);
        }
        if (current.Length > 0) yield return current.ToString();
    }

    // HF's _is_punctuation: ASCII non-alphanumeric printable characters, and Unicode category P*.
    static bool IsPunctuation(char c) =>
        c is >= '!' and <= '/' or >= ':' and <= '@' or >= '[' and <= '`' or >= '{' and <= '~'
        || CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;

    // HF's _is_chinese_char ranges that fall in the BMP.
    static bool IsCjk(char c) =>
        c is >= '\u4E00' and <= '\u9FFF' or >= '\u3400' and <= '\u4DBF' or >= '\uF900' and <= '\uFAFF';
}
