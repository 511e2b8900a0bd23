using AutogradService.Contracts.V1;
using AutogradService.Fuzz.Harness;
using Google.Protobuf;
using ProtoGraph = AutogradService.Contracts.V1.Graph;
using ProtoTensor = AutogradService.Contracts.V1.Tensor;

namespace AutogradService.Fuzz.Seeds;

/// <summary>
/// The protobuf members of <c>regressions/</c>: hostile messages of the classes issue #9 names (a huge dimension in
/// Inspect, over-nested and malformed protobuf, shapes that overflow, fields that contradict each other), written by
/// <c>seed</c> because they are binary. The JSON and program regressions are plain files beside them.
/// </summary>
public static class Regressions
{
    public static void Write(string folder)
    {
        var proto = Directory.CreateDirectory(Path.Combine(folder, "regressions", "proto")).FullName;
        var y = new Computation { Program = "y = x * x" };
        var messages = new (string Name, FuzzTargets.ProtoRpc Rpc, IMessage Message)[]
        {
            ("inspect-huge-dimension", FuzzTargets.ProtoRpc.Inspect, new InspectRequest { Computation = y, Inputs = { ["x"] = new ProtoTensor { Dtype = DType.Float32, Shape = { 1L << 62 } } } }),
            ("inspect-overflowing-shape", FuzzTargets.ProtoRpc.Inspect, new InspectRequest { Computation = y, Inputs = { ["x"] = new ProtoTensor { Dtype = DType.Float32, Shape = { 65536, 65536, 65536, 65536 } } } }),
            ("shape-overflow", FuzzTargets.ProtoRpc.Evaluate, new EvaluateRequest { Computation = y, Inputs = { ["x"] = new ProtoTensor { Dtype = DType.Float32, Shape = { 65536, 65536, 65536, 65536 } } } }),
            ("raw-length-mismatch", FuzzTargets.ProtoRpc.Evaluate, new EvaluateRequest { Computation = y, Inputs = { ["x"] = new ProtoTensor { Dtype = DType.Float64, Shape = { 4 }, Raw = ByteString.CopyFrom(1, 2, 3) } } }),
            ("two-data-fields", FuzzTargets.ProtoRpc.Evaluate, new EvaluateRequest { Computation = y, Inputs = { ["x"] = new ProtoTensor { Dtype = DType.Float32, Shape = { 1 }, FloatData = { 1 }, DoubleData = { 1 } } } }),
            ("unknown-dtype", FuzzTargets.ProtoRpc.Evaluate, new EvaluateRequest { Computation = y, Inputs = { ["x"] = new ProtoTensor { Dtype = (DType)99, Shape = { 1 }, FloatData = { 1 } } } }),
            ("negative-limits", FuzzTargets.ProtoRpc.Gradient, new GradientRequest { Computation = y, Inputs = { ["x"] = Scalar(2) }, Limits = new RequestLimits { MemoryBytes = -1, TimeoutMs = -5 } }),
            ("no-computation", FuzzTargets.ProtoRpc.Jvp, new JvpRequest { Inputs = { ["x"] = Scalar(2) } }),
            ("subgraphs-20-deep", FuzzTargets.ProtoRpc.Evaluate, new EvaluateRequest { Computation = new Computation { Graph = NestedIf(20) } }),
            ("protobuf-nested-past-recursion-limit", FuzzTargets.ProtoRpc.Evaluate, new EvaluateRequest { Computation = new Computation { Graph = NestedIf(120) } }),
            ("jacobian-of-integer-input", FuzzTargets.ProtoRpc.Jacobian, new JacobianRequest { Computation = y, Inputs = { ["x"] = new ProtoTensor { Dtype = DType.Int64, Shape = { 2 }, Int64Data = { 1, 2 } } }, Wrt = { "x" } }),
        };
        foreach (var (name, rpc, message) in messages)
            File.WriteAllBytes(Path.Combine(proto, name + ".bin"), [(byte)rpc, .. message.ToByteArray()]);
        var valid = new EvaluateRequest { Computation = y, Inputs = { ["x"] = Scalar(3) } }.ToByteArray();
        File.WriteAllBytes(Path.Combine(proto, "truncated.bin"), [(byte)FuzzTargets.ProtoRpc.Evaluate, .. valid[..(valid.Length / 2)]]);

        var sessions = Directory.CreateDirectory(Path.Combine(folder, "regressions", "session-proto")).FullName;
        var streams = new Dictionary<string, Command[]>
        {
            ["open-twice"] = [new() { Open = new SessionOptions() }, new() { Open = new SessionOptions { MemoryBytes = -1 } }],
            ["variable-without-value"] = [new() { Variable = new VariableCommand { Name = "x" } }, new() { Fetch = new FetchCommand { Name = "x" } }],
            ["empty-command"] = [new(), new() { Grad = new GradCommand { Name = "nobody" } }],
            ["unknown-op"] = [new() { Variable = new VariableCommand { Name = "x", Value = Scalar(1) } }, new() { Apply = new ApplyCommand { Op = "frobnicate", Inputs = { "x" }, Output = "y" } }],
            ["backward-twice"] =
            [
                new() { Variable = new VariableCommand { Name = "x", Value = Scalar(2), RequiresGrad = true } },
                new() { Apply = new ApplyCommand { Program = "y = x * x" } },
                new() { Backward = new BackwardCommand { Output = "y" } },
                new() { Backward = new BackwardCommand { Output = "y" } },
            ],
        };
        foreach (var (name, commands) in streams)
        {
            using var stream = new MemoryStream();
            foreach (var c in commands) c.WriteDelimitedTo(stream);
            File.WriteAllBytes(Path.Combine(sessions, name + ".bin"), stream.ToArray());
        }
    }

    /// <summary>Binary reproducers of the fuzzer's findings, fixed and replayed with the other regressions.</summary>
    public static void WriteFindings(string folder)
    {
        var sessions = Directory.CreateDirectory(Path.Combine(folder, "regressions", "session-proto")).FullName;
        using var stream = new MemoryStream();
        new Command { Variable = new VariableCommand { Name = "x", Value = Scalar(2), RequiresGrad = true } }.WriteDelimitedTo(stream);
        var sum = new ApplyCommand { Op = "sum", Inputs = { "x" }, Output = "s" };
        sum.Attrs["axes"] = new Contracts.V1.Attribute { Ints = new IntList { Values = { 0 } } };
        new Command { Apply = sum }.WriteDelimitedTo(stream);
        File.WriteAllBytes(Path.Combine(sessions, "reduce-axes-on-scalar.bin"), stream.ToArray());
    }

    private static ProtoTensor Scalar(float value) => new() { Dtype = DType.Float32, FloatData = { value } };

    private static ProtoGraph NestedIf(int depth)
    {
        var leaf = new ProtoGraph { Inputs = { new Parameter { Name = "x" } }, Outputs = { "x" } };
        var g = leaf;
        for (int i = 0; i < depth; i++)
        {
            var node = new Node { Op = "if", Inputs = { "c", "x" }, Outputs = { "y" } };
            node.Attrs["then"] = new Contracts.V1.Attribute { Graph = g };
            node.Attrs["else"] = new Contracts.V1.Attribute { Graph = leaf };
            g = new ProtoGraph
            {
                Inputs = { new Parameter { Name = "x", HasShape = true } },
                Nodes = { new Node { Op = "gt", Inputs = { "x", "0" }, Outputs = { "c" } }, node },
                Outputs = { "y" },
            };
        }
        return g;
    }
}
