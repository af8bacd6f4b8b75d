using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Tokenizers;

/// <summary>One text as a text encoder takes it: ids padded to the tokenizer's fixed length, and 1/0 attention mask.</summary>
public sealed record TokenizedText(int[] InputIds, int[] AttentionMask)
{
    /// <summary>Number of real (unmasked) tokens, special tokens included.</summary>
    public int Length => AttentionMask.Count(m => m != 0);
}

/// <summary>A tokenizer that pads or truncates every text to <see cref="MaxLength"/> (HF: padding="max_length", truncation=True).</summary>
public interface ITextTokenizer
{
    int MaxLength { get; }

    TokenizedText Encode(string text);
}

public static class TextTokenizerExtensions
{
    /// <summary>Encodes texts into int64 tensors [B, MaxLength]: input ids and attention mask.</summary>
    public static (Tensor InputIds, Tensor AttentionMask) EncodeBatch(this ITextTokenizer tokenizer, IReadOnlyList<string> texts, Device? device = null)
    {
        int L = tokenizer.MaxLength;
        var ids = new long[texts.Count * L];
        var mask = new long[texts.Count * L];
        for (int b = 0; b < texts.Count; b++)
        {
            var t = tokenizer.Encode(texts[b]);
            for (int j = 0; j < L; j++)
            {
                ids[b * L + j] = t.InputIds[j];
                mask[b * L + j] = t.AttentionMask[j];
            }
        }
        return (tensor(ids, [texts.Count, L], device: device), tensor(mask, [texts.Count, L], device: device));
    }

    internal static TokenizedText Pad(IReadOnlyList<int> ids, int maxLength, int padId)
    {
        var inputIds = new int[maxLength];
        var mask = new int[maxLength];
        for (int j = 0; j < maxLength; j++)
        {
            bool real = j < ids.Count;
            inputIds[j] = real ? ids[j] : padId;
            mask[j] = real ? 1 : 0;
        }
        return new TokenizedText(inputIds, mask);
    }
}
