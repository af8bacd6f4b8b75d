using System.Buffers.Binary;
using System.Text;
using BatchRender.Model.Loading;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests;

public class SafetensorsFileTests
{
    [Fact]
    public void WriteThenRead_RoundTripsEveryDtypeBitExactly_AlsoThroughChunkedReads()
    {
        using var dir = TestDevice.TempDir();
        var path = Path.Combine(dir.Path, "t.safetensors");
        torch.manual_seed(1);
        var tensors = new Dictionary<string, Tensor>
        {
            ["a.f32"] = torch.randn(3, 5),
            ["b.f16"] = torch.randn(7).to(ScalarType.Float16),
            ["c.bf16"] = torch.randn(2, 3, 4).to(ScalarType.BFloat16),
            ["d.i64"] = torch.arange(0, 11, dtype: ScalarType.Int64),
            ["e.scalar"] = torch.tensor(3.5f),
        };
        SafetensorsFile.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });

        var previous = SafetensorsFile.ReadChunkBytes;
        try
        {
            SafetensorsFile.ReadChunkBytes = 6;   // several reads per tensor, chunk boundaries inside tensors
            var header = SafetensorsFile.ReadHeader(path);
            Assert.Equal("pt", header.Metadata["format"]);
            Assert.Equal(0, (header.DataStart - 8) % 8);   // header padded to 8 bytes
            var read = header.ReadAll();
            Assert.Equal(tensors.Keys.Order(), read.Keys.Order());
            foreach (var (name, t) in tensors)
            {
                Assert.Equal(t.dtype, read[name].dtype);
                Assert.Equal(t.shape, read[name].shape);
                Assert.True(t.eq(read[name]).all().item<bool>(), name);
            }
        }
        finally { SafetensorsFile.ReadChunkBytes = previous; }
    }

    [Fact]
    public void ReadHeader_RejectsTruncatedAndInconsistentFiles_NamingTheProblem()
    {
        using var dir = TestDevice.TempDir();
        var tiny = Path.Combine(dir.Path, "tiny.safetensors");
        File.WriteAllBytes(tiny, [1, 2, 3]);
        Assert.Contains("not a safetensors file", Assert.Throws<InvalidDataException>(() => SafetensorsFile.ReadHeader(tiny)).Message);

        // A header that claims more bytes than the data section holds.
        var bad = Path.Combine(dir.Path, "bad.safetensors");
        var json = Encoding.UTF8.GetBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}");
        var bytes = new byte[8 + json.Length + 8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, json.Length);
        json.CopyTo(bytes, 8);
        File.WriteAllBytes(bad, bytes);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.ReadHeader(bad));
        Assert.Contains("'w'", e.Message);
        Assert.Contains("data_offsets", e.Message);

        // Byte length that does not match dtype x shape.
        json = Encoding.UTF8.GetBytes("{\"w\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,4]}}");
        bytes = new byte[8 + json.Length + 4];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, json.Length);
        json.CopyTo(bytes, 8);
        File.WriteAllBytes(bad, bytes);
        e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.ReadHeader(bad));
        Assert.Contains("F16 [3] needs 6 bytes", e.Message);
    }
}
