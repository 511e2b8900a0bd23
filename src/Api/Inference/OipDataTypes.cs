using AutogradService.Api.Json;
using AutogradService.Api.Options;
using AutogradService.Engine;
using AutogradService.Engine.Tensors;

namespace AutogradService.Api.Inference;

/// <summary>
/// The Open Inference Protocol's tensor datatypes this server computes in (BOOL, INT64, FP32, FP64, the engine's four),
/// and the checks every received tensor passes whatever its transport: a supported datatype, a valid shape within the
/// server's rank and element limits.
/// </summary>
public static class OipDataTypes
{
    public const string Supported = "BOOL, INT64, FP32 or FP64";

    /// <summary>The protocol's other datatypes: named in the refusal as known but not served.</summary>
    private static readonly HashSet<string> KnownUnsupported =
        ["UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "FP16", "BF16", "BYTES"];

    public static DType Parse(string? datatype, string path) => datatype switch
    {
        "BOOL" => DType.Bool,
        "INT64" => DType.Int64,
        "FP32" => DType.Float32,
        "FP64" => DType.Float64,
        null or "" => throw JsonFields.Invalid(path, $"is required: {Supported}"),
        _ when KnownUnsupported.Contains(datatype) =>
            throw JsonFields.Invalid(path, $"is {datatype}, which this server does not compute in; send {Supported}"),
        _ => throw JsonFields.Invalid(path, $"'{EngineException.Clip(datatype, 40)}' is not an Open Inference Protocol datatype; send {Supported}"),
    };

    public static string Name(DType dtype) => dtype switch
    {
        DType.Bool => "BOOL",
        DType.Int64 => "INT64",
        DType.Float64 => "FP64",
        _ => "FP32",
    };

    /// <summary>A received shape as the engine's, refused past the server's rank and element limits before anything is allocated.</summary>
    public static Shape ReadShape(IReadOnlyList<long> dims, string name, string path, LimitsOptions limits)
    {
        if (dims.Count > limits.MaxRank)
            throw EngineException.InvalidTensor($"tensor '{Clip(name)}' has rank {dims.Count}, over the limit of {limits.MaxRank}", Clip(name));
        var shape = new int[dims.Count];
        for (int i = 0; i < dims.Count; i++)
        {
            if (dims[i] < 0 || dims[i] > int.MaxValue)
                throw JsonFields.Invalid($"{path}[{i}]", $"must be a dimension between 0 and {int.MaxValue}, got {dims[i]}");
            shape[i] = (int)dims[i];
        }
        // Multiplied while under the limit (no overflow); a zero dimension anywhere makes an empty tensor.
        long elements = shape.Contains(0) ? 0 : 1;
        for (int i = 0; i < shape.Length && elements > 0 && elements <= limits.MaxTensorElements; i++) elements *= shape[i];
        if (elements > limits.MaxTensorElements)
            throw EngineException.InvalidTensor(
                $"tensor '{Clip(name)}' of shape [{string.Join(", ", dims)}] has more elements than the limit of {limits.MaxTensorElements}", Clip(name));
        return new Shape(shape);
    }

    public static string Clip(string name) => EngineException.Clip(name, 128);
}
