using ILGPU;
using ILGPU.Runtime;

namespace AutogradService.Gpu;

/// <summary>
/// A shared-memory tiled batched matrix product: the product when cuBLAS is absent, and the one ILGPU's CPU
/// accelerator can test. A group of <see cref="Tile"/> × <see cref="Tile"/> threads computes one output tile, staging
/// a tile of each operand in shared memory per step of K. Each thread sums its K terms in increasing order, as the
/// one-thread-per-output kernel does, so both give the same bits (padding adds exact zeros).
/// </summary>
public static class GemmKernels
{
    public const int Tile = 16;

    public static void TiledF32(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, MatMulLayout l)
    {
        var sa = SharedMemory.Allocate<float>(Tile * Tile);
        var sb = SharedMemory.Allocate<float>(Tile * Tile);
        int tx = Group.IdxX, ty = Group.IdxY;
        int row = Grid.IdxY * Tile + ty, col = Grid.IdxX * Tile + tx, batch = Grid.IdxZ;
        float acc = 0;
        for (int t = 0; t < l.K; t += Tile)
        {
            int ka = t + tx, kb = t + ty;
            sa[ty * Tile + tx] = row < l.M && ka < l.K ? a[batch * l.ABatch + row * l.ARow + ka * l.ACol] : 0;
            sb[ty * Tile + tx] = kb < l.K && col < l.N ? b[batch * l.BBatch + kb * l.BRow + col * l.BCol] : 0;
            Group.Barrier();
            for (int q = 0; q < Tile; q++) acc += sa[ty * Tile + q] * sb[q * Tile + tx];
            Group.Barrier();
        }
        if (row < l.M && col < l.N) c[(batch * l.M + row) * l.N + col] = acc;
    }

    public static void TiledF64(ArrayView<double> a, ArrayView<double> b, ArrayView<double> c, MatMulLayout l)
    {
        var sa = SharedMemory.Allocate<double>(Tile * Tile);
        var sb = SharedMemory.Allocate<double>(Tile * Tile);
        int tx = Group.IdxX, ty = Group.IdxY;
        int row = Grid.IdxY * Tile + ty, col = Grid.IdxX * Tile + tx, batch = Grid.IdxZ;
        double acc = 0;
        for (int t = 0; t < l.K; t += Tile)
        {
            int ka = t + tx, kb = t + ty;
            sa[ty * Tile + tx] = row < l.M && ka < l.K ? a[batch * l.ABatch + row * l.ARow + ka * l.ACol] : 0;
            sb[ty * Tile + tx] = kb < l.K && col < l.N ? b[batch * l.BBatch + kb * l.BRow + col * l.BCol] : 0;
            Group.Barrier();
            for (int q = 0; q < Tile; q++) acc += sa[ty * Tile + q] * sb[q * Tile + tx];
            Group.Barrier();
        }
        if (row < l.M && col < l.N) c[(batch * l.M + row) * l.N + col] = acc;
    }

    /// <summary>The launch shape for a batch of m × n outputs: one group per output tile, the batch on the grid's z.</summary>
    public static KernelConfig Config(int m, int n, int batch) =>
        new(new Index3D((n + Tile - 1) / Tile, (m + Tile - 1) / Tile, batch), new Index3D(Tile, Tile, 1));

    /// <summary>Both kernels, for the PTX compile test.</summary>
    public static IReadOnlyList<System.Reflection.MethodInfo> All { get; } =
        [typeof(GemmKernels).GetMethod(nameof(TiledF32))!, typeof(GemmKernels).GetMethod(nameof(TiledF64))!];
}
