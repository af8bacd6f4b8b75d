using Google.Protobuf;

namespace BatchRender.Model.Tokenizers;

/// <summary>
/// Edits a serialized SentencePiece ModelProto (sentencepiece_model.proto) without generated classes: only
/// trainer_spec.bos_id is rewritten, every other field is copied byte for byte.
/// Why: T5/mT5 spiece.model files have no BOS piece (bos_id = -1), and Microsoft.ML.Tokenizers' SentencePieceTokenizer
/// indexes the piece table with bos_id in its constructor (IndexOutOfRangeException). We never add a BOS token, so
/// pointing bos_id at an existing piece changes no encoding.
/// </summary>
public static class SentencePieceModelPatch
{
    private const int ModelProtoTrainerSpec = 2;  // ModelProto.trainer_spec (TrainerSpec)
    private const int TrainerSpecUnkId = 40;      // TrainerSpec.unk_id (int32, default 0)
    private const int TrainerSpecBosId = 41;      // TrainerSpec.bos_id (int32, default 1)

    /// <summary>Reads trainer_spec.bos_id (1, the proto default, if absent).</summary>
    public static int ReadBosId(byte[] model) => ReadTrainerSpecInt(model, TrainerSpecBosId) ?? 1;

    /// <summary>Reads trainer_spec.unk_id (0, the proto default, if absent).</summary>
    public static int ReadUnkId(byte[] model) => ReadTrainerSpecInt(model, TrainerSpecUnkId) ?? 0;

    /// <summary>Returns the model with trainer_spec.bos_id set to <paramref name="bosId"/>.</summary>
    public static byte[] WithBosId(byte[] model, int bosId)
    {
        using var output = new MemoryStream(model.Length + 16);
        bool sawTrainerSpec = false;
        foreach (var (field, raw, payload) in Fields(model))
        {
            if (field == ModelProtoTrainerSpec)
            {
                sawTrainerSpec = true;
                output.Write(TrainerSpecField(RewriteTrainerSpec(payload!, bosId)));
            }
            else
            {
                output.Write(raw);
            }
        }
        if (!sawTrainerSpec) output.Write(TrainerSpecField(RewriteTrainerSpec([], bosId)));
        return output.ToArray();
    }

    private static byte[] TrainerSpecField(byte[] spec) => Encode(w =>
    {
        w.WriteTag(ModelProtoTrainerSpec, WireFormat.WireType.LengthDelimited);
        w.WriteBytes(ByteString.CopyFrom(spec));
    });

    private static byte[] RewriteTrainerSpec(byte[] spec, int bosId)
    {
        using var output = new MemoryStream(spec.Length + 8);
        foreach (var (field, raw, _) in Fields(spec))
            if (field != TrainerSpecBosId) output.Write(raw);
        output.Write(Encode(w =>
        {
            w.WriteTag(TrainerSpecBosId, WireFormat.WireType.Varint);
            w.WriteInt32(bosId);
        }));
        return output.ToArray();
    }

    private static byte[] Encode(Action<CodedOutputStream> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new CodedOutputStream(buffer, leaveOpen: true))
        {
            write(writer);
            writer.Flush();
        }
        return buffer.ToArray();
    }

    private static int? ReadTrainerSpecInt(byte[] model, int fieldNumber)
    {
        int? value = null;
        foreach (var (field, _, payload) in Fields(model))
        {
            if (field != ModelProtoTrainerSpec) continue;
            var input = new CodedInputStream(payload!);
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                if (WireFormat.GetTagFieldNumber(tag) == fieldNumber && WireFormat.GetTagWireType(tag) == WireFormat.WireType.Varint)
                    value = input.ReadInt32(); // last occurrence wins, as in protobuf
                else
                    input.SkipLastField();
            }
        }
        return value;
    }

    /// <summary>The top-level fields of a message: number, raw bytes (tag included) and, for length-delimited
    /// fields, the payload.</summary>
    private static IEnumerable<(int Field, byte[] Raw, byte[]? Payload)> Fields(byte[] message)
    {
        var input = new CodedInputStream(message);
        while (true)
        {
            long start = input.Position;
            uint tag;
            try { tag = input.ReadTag(); }
            catch (InvalidProtocolBufferException e) { throw new InvalidDataException("not a SentencePiece model: " + e.Message, e); }
            if (tag == 0) yield break;
            byte[]? payload = null;
            try
            {
                if (WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited) payload = input.ReadBytes().ToByteArray();
                else input.SkipLastField();
            }
            catch (InvalidProtocolBufferException e) { throw new InvalidDataException("not a SentencePiece model: " + e.Message, e); }
            yield return (WireFormat.GetTagFieldNumber(tag), message.AsSpan((int)start, (int)(input.Position - start)).ToArray(), payload);
        }
    }
}
