using System.Text;
using System.Text.Json;
using AutogradService.Api.Grpc;
using AutogradService.Api.Json;
using AutogradService.Contracts.V1;
using AutogradService.Engine.Ops;
using AutogradService.Tests.Shared;
using AutogradService.Fuzz.Harness;
using Google.Protobuf;
using EngineGraph = AutogradService.Engine.Graphs.Graph;
using ProtoTensor = AutogradService.Contracts.V1.Tensor;

namespace AutogradService.Fuzz.Seeds;

/// <summary>
/// The seed corpora: real requests, taken from the README's examples and the Api tests' chapter cases (C1, C3, C5, E1,
/// E6), small and valid, one file each under <c>corpus/&lt;target&gt;/</c>; the protobuf seeds are the same requests
/// encoded. Also writes AFL dictionaries: the JSON field names and the program syntax with every registered op.
/// Run <c>dotnet run --project tests/Fuzz -- seed tests/Fuzz</c> after changing this file.
/// </summary>
public static class SeedCorpus
{
    private const string C1Program = "t = dot(x, x)\ny = 2 * t";
    private const string E6Program = "square = x ** 2\nlg = log(square)\nsn = sin(x)\nproduct = lg * sn\nrecip = 1 / x\nf = product + recip";

    private static readonly Dictionary<string, string> Tensors = new()
    {
        ["scalar"] = "3.5",
        ["nan"] = "\"NaN\"",
        ["bool"] = "true",
        ["nested"] = "[[1, 2, 3], [4, 5, 6]]",
        ["nested-bool"] = "[[true, false], [false, true]]",
        ["float64"] = """{"dtype": "float64", "shape": [2, 2], "data": [0.5, -1, 2, -1.5]}""",
        ["int64"] = """{"dtype": "int64", "shape": [3], "data": [1, -2, 3]}""",
        ["bool-object"] = """{"dtype": "bool", "shape": [2], "data": [true, false]}""",
        ["b64"] = """{"dtype": "float32", "shape": [2], "b64": "AACAPwAAAEA="}""",
        ["empty"] = """{"dtype": "float32", "shape": [0, 3], "data": []}""",
        ["infinity"] = """{"shape": [3], "data": ["Infinity", "-Infinity", 1e-30]}""",
        ["scalar-object"] = """{"dtype": "float64", "shape": [], "data": 2.5}""",
    };

    /// <summary>Open Inference Protocol requests (docs/OIP.md) for the harness's MLP (x [2, 3], w [3, 2], b [2]):
    /// infer with nested data and requested outputs, a batch of cotangents, tangents, a Jacobian, other datatypes.</summary>
    private static readonly Dictionary<string, string> OipRequests = new()
    {
        ["infer-nested"] = """
            {"id": "r1", "parameters": {"priority": 1}, "outputs": [{"name": "y"}],
             "inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [[1, 2, 3], [4, 5, 6]]},
                        {"name": "w", "shape": [3, 2], "datatype": "FP32", "data": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]},
                        {"name": "b", "shape": [2], "datatype": "FP32", "data": [0.5, -0.5]}]}
            """,
        ["vjp-batched"] = """
            {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]},
                        {"name": "w", "shape": [3, 2], "datatype": "FP32", "data": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]},
                        {"name": "b", "shape": [2], "datatype": "FP32", "data": [0.5, -0.5]}],
             "cotangents": [{"name": "y", "shape": [3, 2, 2], "datatype": "FP32", "data": [1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1]}],
             "wrt": ["w", "b"]}
            """,
        ["vjp-per-row"] = """
            {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": [1, 2, 3, 4, 5, 6]},
                        {"name": "w", "shape": [3, 2], "datatype": "FP64", "data": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]},
                        {"name": "b", "shape": [2], "datatype": "FP64", "data": [0.5, "NaN"]}],
             "cotangents": [{"name": "z", "shape": [2], "datatype": "FP64", "data": [1, -1]}], "of": ["z"]}
            """,
        ["jvp"] = """
            {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]},
                        {"name": "w", "shape": [3, 2], "datatype": "FP32", "data": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]},
                        {"name": "b", "shape": [2], "datatype": "FP32", "data": [0.5, -0.5]}],
             "tangents": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 0, 0, 0, 0, 1]}]}
            """,
        ["jacobian"] = """
            {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]},
                        {"name": "w", "shape": [3, 2], "datatype": "FP32", "data": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]},
                        {"name": "b", "shape": [2], "datatype": "FP32", "data": [0.5, -0.5]}],
             "wrt": ["b"], "of": ["y", "z"]}
            """,
        ["other-types"] = """
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "INT64", "data": [1, 2, 3]},
                        {"name": "w", "shape": [3, 2], "datatype": "BOOL", "data": [true, false, true, false, true, false]},
                        {"name": "b", "shape": [0], "datatype": "FP32", "data": []}]}
            """,
    };

    /// <summary>Graphs in the contract's JSON: C1, C5 (while + if with shadowing subgraphs), a counting loop, constants and attributes.</summary>
    private static readonly Dictionary<string, string> Graphs = new()
    {
        ["c1"] = """{"inputs": [{"name": "x", "dtype": "float32", "shape": [4]}], "nodes": [{"op": "dot", "inputs": ["x", "x"], "outputs": ["t"]}, {"op": "mul", "inputs": [2.0, "t"], "outputs": ["y"]}], "outputs": ["y"]}""",
        ["c5-while-if"] = """
            {"inputs": [{"name": "a", "dtype": "float32", "shape": [3]}],
             "nodes": [
               {"op": "mul", "inputs": [2.0, "a"], "outputs": ["b0"]},
               {"op": "while", "inputs": ["b0"], "outputs": ["b"], "name": "loop", "attrs": {
                 "cond": {"inputs": [{"name": "b"}], "nodes": [{"op": "norm", "inputs": ["b"], "outputs": ["n"]}, {"op": "lt", "inputs": ["n", 1000.0], "outputs": ["go"]}], "outputs": ["go"]},
                 "body": {"inputs": [{"name": "b"}], "nodes": [{"op": "mul", "inputs": [2.0, "b"], "outputs": ["b2"]}], "outputs": ["b2"]},
                 "max_iterations": 100}},
               {"op": "sum", "inputs": ["b"], "outputs": ["s"]},
               {"op": "gt", "inputs": ["s", 0.0], "outputs": ["positive"]},
               {"op": "if", "inputs": ["positive", "b"], "outputs": ["c"], "name": "choose", "attrs": {
                 "then": {"inputs": [{"name": "b"}], "nodes": [], "outputs": ["b"]},
                 "else": {"inputs": [{"name": "b"}], "nodes": [{"op": "mul", "inputs": [100.0, "b"], "outputs": ["scaled"]}], "outputs": ["scaled"]}}}],
             "outputs": ["c"]}
            """,
        ["counting-loop"] = """
            {"inputs": [{"name": "i0", "dtype": "float32", "shape": []}, {"name": "n", "dtype": "float32", "shape": []}],
             "nodes": [{"op": "while", "inputs": ["i0", "n"], "outputs": ["i", "n_out"], "name": "loop", "attrs": {
               "cond": {"inputs": ["i", "n"], "nodes": [{"op": "lt", "inputs": ["i", "n"], "outputs": ["go"]}], "outputs": ["go"]},
               "body": {"inputs": ["i", "n"], "nodes": [{"op": "add", "inputs": ["i", 1.0], "outputs": ["i2"]}], "outputs": ["i2", "n"]}}}],
             "outputs": ["i"]}
            """,
        ["constants-attrs"] = """
            {"inputs": [{"name": "x", "dtype": "float64", "shape": [2, 3]}],
             "constants": {"w": {"dtype": "float64", "shape": [3, 2], "data": [1, 2, 3, 4, 5, 6]}},
             "nodes": [
               {"op": "matmul", "inputs": ["x", "w"], "outputs": ["h"]},
               {"op": "tanh", "inputs": ["h"], "outputs": ["a"]},
               {"op": "sum", "inputs": ["a"], "outputs": ["s"], "attrs": {"axes": [1], "keepdims": true}, "name": "total"},
               {"op": "reshape", "inputs": ["s"], "outputs": ["r"], "attrs": {"shape": [-1]}}],
             "outputs": ["r"]}
            """,
        ["any-shape"] = """{"inputs": [{"name": "x", "dtype": "float32", "shape": [-1, -1]}, {"name": "k", "dtype": "int64"}], "nodes": [{"op": "transpose", "inputs": ["x"], "outputs": ["t"]}, {"op": "exp", "inputs": ["t"], "outputs": ["y"]}], "outputs": ["y"]}""",
    };

    private static readonly Dictionary<string, string> Programs = new()
    {
        ["c1"] = C1Program,
        ["c3"] = "y = x * x",
        ["e6"] = E6Program,
        ["calls-attrs"] = "# reductions with attributes\ns = sum(x, axes=[0], keepdims=true)\nm = mean(x * x)\ny = s * m - 0.5",
        ["power-matmul"] = "a = x @ transpose(x)\nb = -a ** 2 ** 0.5\ny = sum(b / (1 + exp(-b)))",
        ["rebinding"] = "b = 2 * a\nb = 2 * b\nn = norm(b)\nc = identity(b)",
        ["constant-line"] = "k = 3\ny = k * x + 1e-3",
        ["seed-pytorch"] = SeedCells.PyTorch,
        ["seed-mxnet"] = SeedCells.MxNet,
        ["seed-tensorflow"] = SeedCells.TensorFlow,
        ["seed-jax"] = SeedCells.Jax,
        ["elif-nested-loops"] = "import torch\n\ndef g(x: torch.Tensor, n) -> torch.Tensor:\n    i, total = 0 * n, x\n    while i < n and not total.sum() > 1e6:\n        j = 0\n        while j < 2:\n            total *= 1.5\n            j += 1\n        if i == 0:\n            total = total.T\n        elif 0 < i <= 2:\n            total = jnp.linalg.norm(total) + total\n        else:\n            pass\n        i = i + 1\n    return total, tf.reduce_mean(total, axis=0)\n",
    };

    /// <summary>Whole transform bodies: the README's gradient, and each transform's own fields.</summary>
    private static readonly Dictionary<string, string> Transforms = new()
    {
        ["readme-gradient"] = """{"program": "t = dot(x, x)\ny = 2 * t", "inputs": {"x": [0, 1, 2, 3]}, "wrt": ["x"]}""",
        ["evaluate-graph"] = $$$"""{"graph": {{{Compact(Graphs["c1"])}}}, "inputs": {"x": [0, 1, 2, 3]}, "limits": {"memory_bytes": 1048576, "timeout_ms": 500}, "device": "cpu"}""",
        ["gradient-seeds"] = """{"program": "square = x ** 2\nlg = log(square)\nsn = sin(x)\nproduct = lg * sn\nrecip = 1 / x\nf = product + recip", "inputs": {"x": {"dtype": "float64", "shape": [4], "data": [0.5, 1, 2, -1.5]}}, "wrt": ["x"], "seeds": {"f": [1, 1, 1, 1]}, "intermediates": ["square", "product"]}""",
        ["jvp"] = """{"program": "y = x * x", "inputs": {"x": [1, 2, 3]}, "tangents": {"x": [1, 0, 0]}}""",
        ["jacobian"] = """{"program": "y = exp(x) * x", "inputs": {"x": [0.5, 1.5]}, "wrt": ["x"], "mode": "reverse", "outputs": ["y"]}""",
        ["hessian-vector"] = """{"program": "y = sum(x * x * x)", "inputs": {"x": [1, 2]}, "wrt": ["x"], "vector": {"x": [1, 0]}, "tensor_encoding": "b64"}""",
        ["while-b64"] = $$$"""{"graph": {{{Compact(Graphs["c5-while-if"])}}}, "inputs": {"a": {"dtype": "float32", "shape": [3], "b64": "AACAPwAAAEAAAEBA"}}, "wrt": ["a"]}""",
        ["model"] = """{"model": "missing", "inputs": {}}""",
    };

    /// <summary>Session batches: the README's define-by-run loop, higher order (E1), and the rest of the command set.</summary>
    private static readonly Dictionary<string, string> SessionBatches = new()
    {
        ["readme"] = """{"commands": [{"variable": {"name": "a", "value": 0.5}}, {"apply": {"program": "b = 2 * a\nn = norm(b)"}}, {"fetch": {"name": "n"}}, {"apply": {"program": "b = 2 * b\nn = norm(b)"}}, {"apply": {"program": "s = sum(b)"}}, {"fetch": {"name": "s"}}, {"apply": {"program": "c = identity(b)"}}, {"backward": {"output": "c"}}, {"grad": {"name": "a"}}]}""",
        ["second-order"] = """{"commands": [{"variable": {"name": "x", "value": {"dtype": "float64", "shape": [2], "data": [0.5, 2]}}}, {"apply": {"op": "sin", "inputs": ["x"], "output": "y"}}, {"backward": {"output": "y", "create_graph": true}}, {"grad": {"name": "x", "output": "dx"}}, {"zero_grad": {"names": ["x"]}}, {"backward": {"output": "dx", "retain_graph": true}}, {"grad": {"name": "x"}}]}""",
        ["commands"] = """{"commands": [{"command": "constant", "name": "c", "value": [1, 2]}, {"variable": {"name": "w", "value": [3, 4], "requires_grad": true}}, {"no_grad": {"enabled": true}}, {"apply": {"op": "mul", "inputs": ["c", "w"], "output": "p", "attrs": {}}}, {"no_grad": {"enabled": false}}, {"detach": {"name": "w", "output": "wd"}}, {"apply": {"op": "sum", "inputs": ["w"], "output": "s", "attrs": {"axes": [0]}}}, {"backward": {"output": "s", "seed": 2.0}}, {"release": {"names": ["p", "wd"]}}, {"program": "q = s * s"}, {"fetch": {"name": "q"}}]}""",
    };

    public static int Write(string folder)
    {
        WriteAll(folder, "tensor-json", Tensors);
        WriteAll(folder, "graph-json", Graphs);
        WriteAll(folder, "transform-json", Transforms);
        WriteAll(folder, "program", Programs);
        WriteAll(folder, "session-json", SessionBatches);
        WriteAll(folder, "oip-json", OipRequests);
        WriteProto(folder);
        WriteSessionProto(folder);
        WriteDictionaries(folder);
        Regressions.Write(folder);
        Regressions.WriteFindings(folder);
        return 0;
    }

    private static void WriteAll(string folder, string target, Dictionary<string, string> seeds)
    {
        var dir = Directory.CreateDirectory(Path.Combine(folder, "corpus", target)).FullName;
        foreach (var (name, text) in seeds)
        {
            var bytes = Encoding.UTF8.GetBytes(target == "program" ? text : Compact(text));
            Check(target, name, bytes);
            File.WriteAllBytes(Path.Combine(dir, name + (target == "program" ? ".txt" : ".json")), bytes);
        }
    }

    /// <summary>A seed that crashes its target is no seed: refuse to write it.</summary>
    private static void Check(string target, string name, byte[] bytes)
    {
        var outcome = FuzzTargets.Get(target).Execute(bytes);
        Console.WriteLine($"{target}/{name}: {outcome}");
        if (outcome.Kind == OutcomeKind.Crash) throw new InvalidOperationException($"seed {target}/{name} crashes its target");
    }

    private static string Compact(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return JsonSerializer.Serialize(doc.RootElement, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    private static void WriteProto(string folder)
    {
        var dir = Directory.CreateDirectory(Path.Combine(folder, "corpus", "proto")).FullName;
        var x = F32([0, 1, 2, 3]);
        var program = new Computation { Program = C1Program };
        var loop = new Computation { Graph = ToProto(ReadGraph(Graphs["c5-while-if"])) };
        var matmul = new Computation { Graph = ToProto(ReadGraph(Graphs["constants-attrs"])) };
        var e6x = new ProtoTensor { Dtype = DType.Float64, Shape = { 4 }, DoubleData = { 0.5, 1, 2, -1.5 } };
        var seeds = new (string Name, FuzzTargets.ProtoRpc Rpc, IMessage Message)[]
        {
            ("evaluate-program", FuzzTargets.ProtoRpc.Evaluate, new EvaluateRequest { Computation = program, Inputs = { ["x"] = x }, Limits = new RequestLimits { MemoryBytes = 1 << 20, TimeoutMs = 500 } }),
            ("evaluate-graph", FuzzTargets.ProtoRpc.Evaluate, new EvaluateRequest { Computation = matmul, Inputs = { ["x"] = new ProtoTensor { Dtype = DType.Float64, Shape = { 2, 3 }, Raw = ByteString.CopyFrom(new byte[48]) } } }),
            ("gradient-loop", FuzzTargets.ProtoRpc.Gradient, new GradientRequest { Computation = loop, Inputs = { ["a"] = F32([1, 2, 3]) }, Wrt = { "a" } }),
            ("gradient-e6", FuzzTargets.ProtoRpc.Gradient, new GradientRequest { Computation = new Computation { Program = E6Program }, Inputs = { ["x"] = e6x }, Wrt = { "x" }, Intermediates = { "square" }, Seeds = { ["f"] = new ProtoTensor { Dtype = DType.Float64, Shape = { 4 }, DoubleData = { 1, 1, 1, 1 } } } }),
            ("jvp", FuzzTargets.ProtoRpc.Jvp, new JvpRequest { Computation = new Computation { Program = "y = x * x" }, Inputs = { ["x"] = F32([1, 2, 3]) }, Tangents = { ["x"] = F32([1, 0, 0]) } }),
            ("jacobian", FuzzTargets.ProtoRpc.Jacobian, new JacobianRequest { Computation = program, Inputs = { ["x"] = x }, Wrt = { "x" }, Mode = JacobianMode.Forward }),
            ("hessian-vector", FuzzTargets.ProtoRpc.Hessian, new HessianRequest { Computation = new Computation { Program = "y = sum(x * x * x)" }, Inputs = { ["x"] = F32([1, 2]) }, Wrt = { "x" }, Vector = { ["x"] = F32([1, 0]) } }),
            ("inspect", FuzzTargets.ProtoRpc.Inspect, new InspectRequest { Computation = loop, Inputs = { ["a"] = new ProtoTensor { Dtype = DType.Float32, Shape = { 3 } } } }),
            ("stream", FuzzTargets.ProtoRpc.GradientStream, new GradientRequest { Computation = program, Inputs = { ["x"] = x }, Device = "auto" }),
            ("model", FuzzTargets.ProtoRpc.Evaluate, new EvaluateRequest { Computation = new Computation { Model = "missing" } }),
        };
        foreach (var (name, rpc, message) in seeds)
        {
            var bytes = new[] { (byte)rpc }.Concat(message.ToByteArray()).ToArray();
            Check("proto", name, bytes);
            File.WriteAllBytes(Path.Combine(dir, name + ".bin"), bytes);
        }
    }

    private static void WriteSessionProto(string folder)
    {
        var dir = Directory.CreateDirectory(Path.Combine(folder, "corpus", "session-proto")).FullName;
        var streams = new Dictionary<string, Command[]>
        {
            ["readme"] =
            [
                new() { Variable = new VariableCommand { Name = "a", Value = F32([0.5f]), RequiresGrad = true } },
                new() { Apply = new ApplyCommand { Program = "b = 2 * a\nn = norm(b)" } },
                new() { Fetch = new FetchCommand { Name = "n" } },
                new() { Apply = new ApplyCommand { Program = "c = identity(b)" } },
                new() { Backward = new BackwardCommand { Output = "c" } },
                new() { Grad = new GradCommand { Name = "a" } },
            ],
            ["open-second-order"] =
            [
                new() { Open = new SessionOptions { GradientMode = GradientMode.Overwrite, MemoryBytes = 1 << 20 } },
                new() { Variable = new VariableCommand { Name = "x", Value = F32([0.5f, 2]), RequiresGrad = true } },
                new() { Apply = new ApplyCommand { Op = "sin", Inputs = { "x" }, Output = "y" } },
                new() { Backward = new BackwardCommand { Output = "y", CreateGraph = true, Seed = F32([1, 1]) } },
                new() { Grad = new GradCommand { Name = "x", Output = "dx" } },
                new() { ZeroGrad = new ZeroGradCommand { Names = { "x" } } },
                new() { Detach = new DetachCommand { Name = "dx", Output = "d" } },
                new() { NoGrad = new NoGradCommand { Enabled = true } },
                new() { Constant = new ConstantCommand { Name = "k", Value = F32([3]) } },
                new() { Apply = new ApplyCommand { Op = "sum", Inputs = { "d" }, Output = "s", Attrs = { ["axes"] = new Contracts.V1.Attribute { Ints = new IntList { Values = { 0 } } } } } },
                new() { Release = new ReleaseCommand { Names = { "d" } } },
                new() { Fetch = new FetchCommand { Name = "s" } },
            ],
        };
        foreach (var (name, commands) in streams)
        {
            using var stream = new MemoryStream();
            foreach (var c in commands) c.WriteDelimitedTo(stream);
            var bytes = stream.ToArray();
            Check("session-proto", name, bytes);
            File.WriteAllBytes(Path.Combine(dir, name + ".bin"), bytes);
        }
    }

    private static void WriteDictionaries(string folder)
    {
        var dir = Directory.CreateDirectory(Path.Combine(folder, "dictionaries")).FullName;
        var json = new SortedSet<string>(StringComparer.Ordinal)
        {
            "{", "}", "[", "]", ":", ",", "\"\"", "true", "false", "null", "-1", "0", "1e308", "-0", "1e-45", "9007199254740993",
            "\"NaN\"", "\"Infinity\"", "\"-Infinity\"", "\\u0000", "\\ud800",
        };
        foreach (var field in new[]
                 {
                     "graph", "program", "model", "inputs", "outputs", "output", "limits", "memory_bytes", "timeout_ms", "device", "wrt", "seeds",
                     "intermediates", "tangents", "mode", "vector", "tensor_encoding", "dtype", "shape", "data", "b64", "nodes", "op", "attrs", "name",
                     "constants", "any_dtype", "commands", "command", "variable", "constant", "apply", "fetch", "backward", "grad", "zero_grad",
                     "detach", "no_grad", "release", "names", "value", "requires_grad", "seed", "retain_graph", "create_graph", "enabled",
                     "float32", "float64", "int64", "bool", "cpu", "gpu", "auto", "forward", "reverse", "json",
                     "id", "parameters", "datatype", "cotangents", "of", "FP32", "FP64", "INT64", "BOOL", "INT32", "binary_data_size",
                 })
            json.Add($"\"{field}\"");
        var program = new SortedSet<string>(StringComparer.Ordinal)
        {
            "=", "+", "-", "*", "/", "**", "@", "(", ")", "[", "]", ",", "#", "\n", "true", "false", "\"s\"", "1e308", "0.5",
            // the control-flow language: keywords, blocks, comparisons, methods and framework spellings
            "def ", "return ", "while ", "if ", "elif ", "else:", " and ", " or ", "not ", "pass", "import ", ":", ".", "\n    ",
            "<", "<=", ">", ">=", "==", "!=", "+=", "*=", "->", "True", "False", ".T", ".sum()", ".norm()", "np.linalg.", "torch.",
            "tf.reduce_sum(", "jax.lax.stop_gradient(", "axis=", "dim=", "keepdim=",
        };
        foreach (var op in OpRegistry.Default.All)
        {
            foreach (var name in op.Schema.Aliases.Prepend(op.Name))
            {
                program.Add(name + "(");
                json.Add($"\"{name}\"");
            }
            foreach (var attr in op.Schema.Attributes)
            {
                program.Add(attr.Name + "=");
                json.Add($"\"{attr.Name}\"");
            }
        }
        File.WriteAllLines(Path.Combine(dir, "json.dict"), json.Select((t, i) => $"t{i}=\"{Escape(t)}\""));
        File.WriteAllLines(Path.Combine(dir, "program.dict"), program.Select((t, i) => $"t{i}=\"{Escape(t)}\""));
    }

    /// <summary>AFL dictionary values: printable ASCII as is, backslash and quote escaped, anything else as \xNN.</summary>
    private static string Escape(string token)
    {
        var sb = new StringBuilder();
        foreach (var b in Encoding.UTF8.GetBytes(token))
            sb.Append(b is >= 0x20 and < 0x7f and not (byte)'"' and not (byte)'\\' ? ((char)b).ToString() : $"\\x{b:x2}");
        return sb.ToString();
    }

    private static ProtoTensor F32(float[] values)
    {
        var t = new ProtoTensor { Dtype = DType.Float32 };
        t.Shape.Add(values.Length);
        t.FloatData.Add(values);
        return t;
    }

    private static EngineGraph ReadGraph(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return GraphJson.Read(doc.RootElement);
    }

    /// <summary>An engine graph as protobuf (the inverse of <see cref="ProtoMapping"/>'s graph mapping), for the seeds only.</summary>
    private static Contracts.V1.Graph ToProto(EngineGraph g)
    {
        var proto = new Contracts.V1.Graph();
        foreach (var p in g.Inputs)
        {
            var parameter = new Parameter { Name = p.Name, Dtype = ProtoMapping.ToProto(p.DType), HasShape = p.Shape is not null };
            if (p.Shape is not null) parameter.Shape.Add(p.Shape.Select(d => (long)d));
            proto.Inputs.Add(parameter);
        }
        foreach (var (name, value) in g.ConstantValues) proto.Constants[name] = ProtoMapping.ToProto(value);
        foreach (var n in g.Nodes)
        {
            var node = new Node { Op = n.Op, Name = n.Name ?? "" };
            node.Inputs.Add(n.Inputs);
            node.Outputs.Add(n.Outputs);
            foreach (var (key, a) in n.Attributes)
            {
                node.Attrs[key] = a.Value switch
                {
                    long i => new Contracts.V1.Attribute { I = i },
                    double f => new Contracts.V1.Attribute { F = f },
                    string s => new Contracts.V1.Attribute { S = s },
                    bool b => new Contracts.V1.Attribute { B = b },
                    long[] ints => new Contracts.V1.Attribute { Ints = new IntList { Values = { ints } } },
                    double[] floats => new Contracts.V1.Attribute { Floats = new FloatList { Values = { floats } } },
                    EngineGraph sub => new Contracts.V1.Attribute { Graph = ToProto(sub) },
                    Engine.Tensors.HostTensor t => new Contracts.V1.Attribute { Tensor = ProtoMapping.ToProto(t) },
                    _ => throw new InvalidOperationException($"attribute {key} of kind {a.Kind}"),
                };
            }
            proto.Nodes.Add(node);
        }
        proto.Outputs.Add(g.Outputs);
        return proto;
    }
}
