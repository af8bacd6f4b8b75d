using Google.Protobuf;

namespace BatchRender.Training.Tokenizers;

/// <summary>Reads what the builder needs to know from a SentencePiece ModelProto without a generated class:
/// the number of pieces (repeated field 1), which is the T5 encoder's vocabulary size.</summary>
public static class SentencePieceModelInfo
{
    public static int PieceCount(byte[] model)
    {
        var input = new CodedInputStream(model);
        int pieces = 0;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == 1) pieces++;
            input.SkipLastField();
        }
        return pieces;
    }
}
