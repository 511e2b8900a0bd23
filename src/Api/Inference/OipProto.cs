using System.Runtime.InteropServices;
using AutogradService.Api.Json;
using AutogradService.Api.Options;
using AutogradService.Contracts.Inference;
using AutogradService.Engine;
using AutogradService.Engine.Tensors;
using Google.Protobuf;
using Google.Protobuf.Collections;

namespace AutogradService.Api.Inference;

/// <summary>
/// The Open Inference Protocol's gRPC messages to and from <see cref="InferenceCall"/> and <see cref="InferenceReply"/>.
/// A tensor's values come from its typed <c>contents</c> or from the raw bytes at its index (little-endian, BOOL one
/// byte each), never both; outputs go back as raw bytes, as Triton sends them, which every protocol client reads.
/// </summary>
public static class OipProto
{
    public static InferenceCall ReadCall(InferenceKind kind, ModelInferRequest request, LimitsOptions limits,
        RepeatedField<ModelInferRequest.Types.InferInputTensor>? cotangents = null, RepeatedField<ByteString>? rawCotangents = null,
        RepeatedField<ModelInferRequest.Types.InferInputTensor>? tangents = null, RepeatedField<ByteString>? rawTangents = null,
        IReadOnlyList<string>? wrt = null, IReadOnlyList<string>? of = null)
    {
        if (string.IsNullOrEmpty(request.ModelName)) throw JsonFields.Invalid("model_name", "is required");
        List<string>? outputs = null;
        if (request.Outputs.Count > 0)
        {
            outputs = [];
            for (int i = 0; i < request.Outputs.Count; i++)
            {
                var name = request.Outputs[i].Name;
                if (outputs.Contains(name)) throw JsonFields.Invalid($"outputs[{i}].name", $"asks for '{OipDataTypes.Clip(name)}' twice");
                outputs.Add(name);
            }
        }
        return new InferenceCall
        {
            Kind = kind,
            Model = request.ModelName,
            Version = request.ModelVersion,
            Id = string.IsNullOrEmpty(request.Id) ? null : request.Id,
            Inputs = ReadTensors(request.Inputs, request.RawInputContents, "inputs", "raw_input_contents", limits),
            Outputs = outputs,
            Cotangents = cotangents is { Count: > 0 } ? ReadTensors(cotangents, rawCotangents!, "cotangents", "raw_cotangent_contents", limits) : null,
            Tangents = tangents is { Count: > 0 } ? ReadTensors(tangents, rawTangents!, "tangents", "raw_tangent_contents", limits) : null,
            Wrt = wrt is { Count: > 0 } ? wrt : null,
            Of = of is { Count: > 0 } ? of : null,
        };
    }

    private static Dictionary<string, HostTensor> ReadTensors(RepeatedField<ModelInferRequest.Types.InferInputTensor> tensors,
        RepeatedField<ByteString> raw, string field, string rawField, LimitsOptions limits)
    {
        if (raw.Count > 0 && raw.Count != tensors.Count)
            throw JsonFields.Invalid(rawField, $"has {raw.Count} entries for {tensors.Count} tensors in '{field}': give one per tensor, in order");
        var result = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        for (int i = 0; i < tensors.Count; i++)
        {
            var path = $"{field}[{i}]";
            var t = tensors[i];
            if (string.IsNullOrEmpty(t.Name)) throw JsonFields.Invalid(path + ".name", "is required");
            var dtype = OipDataTypes.Parse(t.Datatype, path + ".datatype");
            var shape = OipDataTypes.ReadShape(t.Shape, t.Name, path + ".shape", limits);
            int count = checked((int)shape.ElementCount);
            bool hasContents = t.Contents is { } c && c.CalculateSize() > 0;
            Array data;
            if (raw.Count > 0)
            {
                if (hasContents) throw JsonFields.Invalid(path + ".contents", $"must be empty when '{rawField}' carries the values");
                data = FromRaw(raw[i].Span, dtype, count, t.Name, $"{rawField}[{i}]");
            }
            else data = FromContents(t.Contents, dtype, count, t.Name, path + ".contents");
            if (!result.TryAdd(t.Name, new HostTensor(dtype, shape, data)))
                throw JsonFields.Invalid(path + ".name", $"names '{OipDataTypes.Clip(t.Name)}' a second time");
        }
        return result;
    }

    private static Array FromRaw(ReadOnlySpan<byte> bytes, DType dtype, int count, string name, string path)
    {
        long expected = (long)count * dtype.SizeOf();
        if (bytes.Length != expected)
            throw JsonFields.Invalid(path, $"has {bytes.Length} bytes; tensor '{OipDataTypes.Clip(name)}' ({OipDataTypes.Name(dtype)}, {count} elements) needs {expected}");
        switch (dtype)
        {
            case DType.Float32: return MemoryMarshal.Cast<byte, float>(bytes).ToArray();
            case DType.Float64: return MemoryMarshal.Cast<byte, double>(bytes).ToArray();
            case DType.Int64: return MemoryMarshal.Cast<byte, long>(bytes).ToArray();
            default:
                var b = new bool[count];
                for (int i = 0; i < count; i++) b[i] = bytes[i] != 0;
                return b;
        }
    }

    private static Array FromContents(InferTensorContents? contents, DType dtype, int count, string name, string path)
    {
        contents ??= new InferTensorContents();
        // Only the field of the tensor's own datatype may hold values.
        (string Field, int Count)[] fields =
        [
            ("bool_contents", contents.BoolContents.Count), ("int_contents", contents.IntContents.Count),
            ("int64_contents", contents.Int64Contents.Count), ("uint_contents", contents.UintContents.Count),
            ("uint64_contents", contents.Uint64Contents.Count), ("fp32_contents", contents.Fp32Contents.Count),
            ("fp64_contents", contents.Fp64Contents.Count), ("bytes_contents", contents.BytesContents.Count),
        ];
        var own = dtype switch
        {
            DType.Bool => "bool_contents",
            DType.Int64 => "int64_contents",
            DType.Float64 => "fp64_contents",
            _ => "fp32_contents",
        };
        foreach (var (field, n) in fields)
        {
            if (field != own && n > 0)
                throw JsonFields.Invalid($"{path}.{field}", $"holds values, but tensor '{OipDataTypes.Clip(name)}' is {OipDataTypes.Name(dtype)}: use {own}");
        }
        int given = fields.Single(f => f.Field == own).Count;
        if (given != count)
            throw EngineException.InvalidTensor($"tensor '{OipDataTypes.Clip(name)}' has {given} values in {own} for its shape's {count}", OipDataTypes.Clip(name));
        return dtype switch
        {
            DType.Bool => contents.BoolContents.ToArray(),
            DType.Int64 => contents.Int64Contents.ToArray(),
            DType.Float64 => contents.Fp64Contents.ToArray(),
            _ => contents.Fp32Contents.ToArray(),
        };
    }

    public static ModelInferResponse ToResponse(InferenceReply reply)
    {
        var response = new ModelInferResponse { ModelName = reply.Model, ModelVersion = reply.Version, Id = reply.Id ?? "" };
        AddParameters(response.Parameters, reply.Parameters);
        foreach (var t in reply.Outputs)
        {
            response.Outputs.Add(ToOutput(t));
            response.RawOutputContents.Add(Raw(t.Value));
        }
        return response;
    }

    public static ModelInferResponse.Types.InferOutputTensor ToOutput(NamedTensor t)
    {
        var output = new ModelInferResponse.Types.InferOutputTensor { Name = t.Name, Datatype = OipDataTypes.Name(t.Value.DType) };
        output.Shape.Add(t.Value.Shape.Dims.ToArray().Select(d => (long)d));
        if (t.Parameters is not null) AddParameters(output.Parameters, t.Parameters);
        return output;
    }

    /// <summary>The tensor's own bytes, wrapped rather than copied (its values never change).</summary>
    public static ByteString Raw(HostTensor t) => UnsafeByteOperations.UnsafeWrap(t.LittleEndianMemory);

    private static void AddParameters(MapField<string, InferParameter> target, IReadOnlyDictionary<string, object> parameters)
    {
        foreach (var (key, value) in parameters)
        {
            target[key] = value switch
            {
                bool b => new InferParameter { BoolParam = b },
                long l => new InferParameter { Int64Param = l },
                double d => new InferParameter { DoubleParam = d },
                _ => new InferParameter { StringParam = Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "" },
            };
        }
    }

    public static ModelMetadataResponse ToMetadata(ModelMetadata m)
    {
        var response = new ModelMetadataResponse { Name = m.Name, Platform = m.Platform };
        response.Versions.Add(m.Versions);
        foreach (var t in m.Inputs) response.Inputs.Add(Signature(t));
        foreach (var t in m.Outputs) response.Outputs.Add(Signature(t));
        return response;
    }

    private static ModelMetadataResponse.Types.TensorMetadata Signature(TensorMetadata t)
    {
        var s = new ModelMetadataResponse.Types.TensorMetadata { Name = t.Name, Datatype = t.Datatype };
        s.Shape.Add(t.Shape);
        return s;
    }
}
