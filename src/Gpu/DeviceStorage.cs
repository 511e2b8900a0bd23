using AutogradService.Engine.Memory;
using ILGPU;
using ILGPU.Runtime;

namespace AutogradService.Gpu;

/// <summary>
/// A tensor's bytes on the device, with a host copy made on demand. Contents never change after an op writes them, so
/// one copy each way is enough: "valid here" flags say which side holds the current bytes. Kernels read through
/// <see cref="Input"/> (uploads once if only the host has them) and write through <see cref="Output"/>; host code reads
/// and writes through <see cref="HostPointer"/> (downloads once if only the device has them; the host copy is then the
/// current one, since host code may write it).
/// </summary>
internal sealed class DeviceStorage : Storage
{
    private readonly GpuBackend _backend;
    private readonly MemoryBuffer1D<byte, Stride1D.Dense> _device;
    private nint _host;
    private int _hostClass;
    private long _hostCapacity;
    private bool _hostValid;
    private bool _deviceValid;

    public DeviceStorage(GpuBackend backend, MemoryBudget budget, long bytes) : base(budget, bytes)
    {
        try
        {
            lock (backend.Sync) _device = backend.Pool.Rent(bytes);
        }
        catch
        {
            Uncharge();
            throw;
        }
        _backend = backend;
    }

    /// <summary>The device address of the bytes, for libraries that take raw pointers (cuBLAS).</summary>
    public nint DevicePointer => _device.NativePtr;

    /// <summary>Copies between host and device made so far (tests count them: one each way per value at most).</summary>
    public int Transfers { get; private set; }

    public override nint HostPointer
    {
        get
        {
            lock (_backend.Sync)
            {
                if (_host == 0) _host = BufferPool.Shared.RentRaw(Math.Max(Bytes, 1), out _hostClass, out _hostCapacity);
                if (!_hostValid && _deviceValid && Bytes > 0)
                {
                    _device.View.SubView(0, Bytes).CopyToCPU(_backend.Accelerator.DefaultStream, HostSpan());
                    _backend.Accelerator.Synchronize();
                    Transfers++;
                }
                _hostValid = true;
                _deviceValid = false; // the caller may write the host copy
                return _host;
            }
        }
    }

    /// <summary>The device bytes for a kernel to read (the caller holds the backend's lock).</summary>
    public ArrayView<byte> Input()
    {
        if (!_deviceValid && _hostValid && Bytes > 0)
        {
            _device.View.SubView(0, Bytes).CopyFromCPU(_backend.Accelerator.DefaultStream, HostSpan());
            Transfers++;
        }
        _deviceValid = true;
        return _device.View.AsContiguous();
    }

    /// <summary>The device bytes for a kernel to write (the caller holds the backend's lock): the host copy goes stale.</summary>
    public ArrayView<byte> Output()
    {
        _deviceValid = true;
        _hostValid = false;
        return _device.View.AsContiguous();
    }

    private unsafe Span<byte> HostSpan() => new((void*)_host, checked((int)Bytes));

    protected override void Free()
    {
        lock (_backend.Sync)
        {
            _backend.Pool.Return(_device);
            if (_host != 0) BufferPool.Shared.ReturnRaw(_host, _hostClass, _hostCapacity);
            _host = 0;
        }
    }
}
