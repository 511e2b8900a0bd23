using System.Text.Json;
using AutogradService.Engine;
using AutogradService.Engine.Sessions;

namespace AutogradService.Api.Json;

/// <summary>
/// Session commands in JSON. Each command is an object with one key naming it, e.g.
/// <c>{"variable": {"name": "x", "value": [0,1,2,3]}}</c>; the flat form <c>{"command": "variable", "name": "x", ...}</c>
/// is accepted too.
/// </summary>
public static class SessionJson
{
    public static List<SessionCommand> ReadCommands(JsonElement body, long maxElements)
    {
        if (body.ValueKind != JsonValueKind.Object || !body.TryGetProperty("commands", out var commands) || commands.ValueKind != JsonValueKind.Array)
            throw EngineException.InvalidArgument("the body must be {\"commands\": [...]}");
        var result = new List<SessionCommand>();
        int index = 0;
        foreach (var c in commands.EnumerateArray())
        {
            try
            {
                result.Add(ReadCommand(c, maxElements));
            }
            catch (EngineException e)
            {
                throw new SessionBatchException(index, e, []);
            }
            index++;
        }
        return result;
    }

    public static SessionCommand ReadCommand(JsonElement c, long maxElements)
    {
        if (c.ValueKind != JsonValueKind.Object) throw EngineException.InvalidArgument("each command must be an object");
        string kind;
        JsonElement args;
        if (c.TryGetProperty("command", out var named))
        {
            kind = named.GetString() ?? "";
            args = c;
        }
        else
        {
            var props = c.EnumerateObject().ToArray();
            if (props.Length != 1) throw EngineException.InvalidArgument("a command is an object with one key: its name");
            kind = props[0].Name;
            args = props[0].Value;
        }
        return kind switch
        {
            "variable" => new SessionCommand.Variable(Name(args), Tensor(args, "value", maxElements), Bool(args, "requires_grad", true)),
            "constant" => new SessionCommand.Constant(Name(args), Tensor(args, "value", maxElements)),
            "apply" when args.TryGetProperty("program", out var p) => new SessionCommand.Program(p.GetString() ?? ""),
            "apply" => new SessionCommand.Apply(String(args, "op"), Inputs(args), args.TryGetProperty("attrs", out var a) ? GraphJson.ReadAttributes(a) : Engine.Ops.Attributes.Empty,
                String(args, "output")),
            "program" => new SessionCommand.Program(args.ValueKind == JsonValueKind.String ? args.GetString()! : String(args, "program")),
            "fetch" => new SessionCommand.Fetch(Name(args)),
            "backward" => new SessionCommand.Backward(String(args, "output"),
                args.TryGetProperty("seed", out var s) && s.ValueKind != JsonValueKind.Null ? TensorJson.Read(s, "seed", maxElements) : null,
                Bool(args, "retain_graph", false), Bool(args, "create_graph", false)),
            "grad" => new SessionCommand.Grad(Name(args), args.TryGetProperty("output", out var o) ? o.GetString() : null),
            "zero_grad" => new SessionCommand.ZeroGrad(TransformJson.Strings(args, "names") ?? []),
            "detach" => new SessionCommand.Detach(Name(args), String(args, "output")),
            "no_grad" => new SessionCommand.NoGrad(Bool(args, "enabled", true)),
            "release" => new SessionCommand.Release(TransformJson.Strings(args, "names") ?? []),
            _ => throw EngineException.InvalidArgument($"unknown command '{kind}' (variable, constant, apply, fetch, backward, grad, zero_grad, detach, no_grad, release)"),
        };
    }

    private static List<string> Inputs(JsonElement args)
    {
        if (!args.TryGetProperty("inputs", out var inputs)) return [];
        if (inputs.ValueKind != JsonValueKind.Array) throw EngineException.InvalidArgument("inputs must be a list");
        // Number literals travel as their invariant text; the session turns them into scalars.
        return inputs.EnumerateArray().Select(i => i.ValueKind switch
        {
            JsonValueKind.String => i.GetString()!,
            JsonValueKind.Number => i.GetRawText(),
            _ => throw EngineException.InvalidArgument("an input is a value name or a number"),
        }).ToList();
    }

    private static string Name(JsonElement args) => String(args, "name");

    private static string String(JsonElement args, string property) =>
        args.ValueKind == JsonValueKind.Object && args.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()!
            : throw EngineException.InvalidArgument($"the command needs a string '{property}'");

    private static bool Bool(JsonElement args, string property, bool fallback) =>
        args.ValueKind == JsonValueKind.Object && args.TryGetProperty(property, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? v.GetBoolean()
            : fallback;

    private static Engine.Tensors.HostTensor Tensor(JsonElement args, string property, long maxElements) =>
        args.ValueKind == JsonValueKind.Object && args.TryGetProperty(property, out var v)
            ? TensorJson.Read(v, property, maxElements)
            : throw EngineException.InvalidArgument($"the command needs a tensor '{property}'");
}
