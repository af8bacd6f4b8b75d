using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Embeddings;

/// <summary>
/// 2D rotary position embedding of Hunyuan-DiT's image tokens (diffusers get_2d_rotary_pos_embed, use_real, interleaved pairs).
/// Positions live on a 32x32 "base" grid (512 px): the token grid is mapped onto the centred crop of that grid with the same
/// aspect ratio. Head dims [0, D/2) rotate with the column (x) position, [D/2, D) with the row (y) position.
/// </summary>
public static class HunyuanRotaryEmbedding
{
    /// <summary>diffusers get_resize_crop_region_for_grid: ((top, left), (bottom, right)) on a baseSize x baseSize grid.
    /// Python's round (ties to even) is Math.Round's default.</summary>
    public static ((int Top, int Left) Start, (int Bottom, int Right) Stop) CropRegion(int gridHeight, int gridWidth, int baseSize)
    {
        double ratio = (double)gridHeight / gridWidth;
        int resizeHeight, resizeWidth;
        if (ratio > 1)
        {
            resizeHeight = baseSize;
            resizeWidth = (int)Math.Round((double)baseSize / gridHeight * gridWidth);
        }
        else
        {
            resizeWidth = baseSize;
            resizeHeight = (int)Math.Round((double)baseSize / gridWidth * gridHeight);
        }
        int top = (int)Math.Round((baseSize - resizeHeight) / 2.0);
        int left = (int)Math.Round((baseSize - resizeWidth) / 2.0);
        return ((top, left), (top + resizeHeight, left + resizeWidth));
    }

    /// <summary>
    /// Positions of <paramref name="count"/> tokens along one axis: torch.linspace(start, stop*(n-1)/n, n) in float32, exactly
    /// as diffusers >= 0.32 computes them. Deviation note: this equals numpy's linspace(start, stop, n, endpoint=False) (what
    /// the original Tencent code and older diffusers used) only when start is 0; on the short axis of non-square sizes
    /// (start != 0) positions differ by up to ~0.125. We match current diffusers.
    /// </summary>
    public static Tensor AxisPositions(int start, int stop, int count, Device? device = null)
        => torch.linspace(start, (double)(stop * (count - 1)) / count, count, dtype: ScalarType.Float32, device: device);

    /// <summary>
    /// (cos, sin) tables, each [gridHeight * gridWidth, headDim] float32, tokens row-major, for an image of
    /// <paramref name="height"/> x <paramref name="width"/> pixels (latent = pixels / vaeScaleFactor, grid = latent / patchSize,
    /// base grid = 512 px the same way), as the HunyuanDiT pipeline builds them.
    /// </summary>
    public static (Tensor Cos, Tensor Sin) RotaryTables(int height, int width, int headDim, int patchSize = 2, int vaeScaleFactor = 8,
                                                        Device? device = null)
    {
        if (height <= 0 || width <= 0) throw new ArgumentException($"image size must be positive, got {height}x{width}");
        int gridHeight = height / vaeScaleFactor / patchSize, gridWidth = width / vaeScaleFactor / patchSize;
        if (gridHeight == 0 || gridWidth == 0)
            throw new ArgumentException($"image {height}x{width} is smaller than one patch ({vaeScaleFactor * patchSize} px)");
        return RotaryTablesForGrid(gridHeight, gridWidth, 512 / vaeScaleFactor / patchSize, headDim, device);
    }

    /// <summary>(cos, sin) [gridHeight * gridWidth, headDim] for a token grid mapped onto the crop region of a baseSize grid.</summary>
    public static (Tensor Cos, Tensor Sin) RotaryTablesForGrid(int gridHeight, int gridWidth, int baseSize, int headDim, Device? device = null)
    {
        if (headDim % 4 != 0) throw new ArgumentException($"head dim {headDim} must be a multiple of 4 for 2D RoPE", nameof(headDim));
        using var scope = torch.NewDisposeScope();
        var (start, stop) = CropRegion(gridHeight, gridWidth, baseSize);
        var rows = AxisPositions(start.Top, stop.Bottom, gridHeight, device);
        var cols = AxisPositions(start.Left, stop.Right, gridWidth, device);
        var grid = torch.meshgrid([cols, rows], indexing: "xy");   // each [gridHeight, gridWidth]: [0] = column, [1] = row
        var (cosX, sinX) = RotaryTables1D(headDim / 2, grid[0].reshape(-1));
        var (cosY, sinY) = RotaryTables1D(headDim / 2, grid[1].reshape(-1));
        var cos = torch.cat([cosX, cosY], 1);
        var sin = torch.cat([sinX, sinY], 1);
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>diffusers get_1d_rotary_pos_embed(use_real, repeat_interleave_real): f_k = 1 / theta^(2k/dim); cos/sin of
    /// pos * f_k, each value repeated for the pair (2k, 2k+1). [S] -> ([S, dim], [S, dim]) float32.</summary>
    public static (Tensor Cos, Tensor Sin) RotaryTables1D(int dim, Tensor positions, double theta = 10000.0)
    {
        using var scope = torch.NewDisposeScope();
        var exponents = torch.arange(0, dim, 2, dtype: ScalarType.Float32, device: positions.device) / dim;
        var freqs = 1.0 / torch.pow(torch.tensor((float)theta, device: positions.device), exponents);   // [dim/2]
        var angles = torch.outer(positions.to(ScalarType.Float32), freqs);                                  // [S, dim/2]
        var cos = angles.cos().repeat_interleave(2, dim: 1);
        var sin = angles.sin().repeat_interleave(2, dim: 1);
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Rotates adjacent pairs of the last dim of x [B, H, S, D] by the tables ([S, D]): out[2k] = x[2k] cos - x[2k+1] sin,
    /// out[2k+1] = x[2k+1] cos + x[2k] sin; computed in float32, returned in x's dtype.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = torch.NewDisposeScope();
        var shape = x.shape;
        var pairs = x.reshape([.. shape[..^1], shape[^1] / 2, 2]).unbind(-1);   // real, imag: [B, H, S, D/2]
        var rotated = torch.stack([-pairs[1], pairs[0]], -1).flatten(3);          // [B, H, S, D]
        var c = cos.to(x.device).unsqueeze(0).unsqueeze(0);
        var s = sin.to(x.device).unsqueeze(0).unsqueeze(0);
        var result = x.to(ScalarType.Float32) * c + rotated.to(ScalarType.Float32) * s;
        return result.to(x.dtype).MoveToOuterDisposeScope();
    }
}
