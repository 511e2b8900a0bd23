using System.Text.Json;
using AutogradService.Api.Options;
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
    internal static readonly HashSet<string> BatchFields = ["commands"];

    /// <summary>Each command's fields; any other is refused by name (the OpenAPI schemas list the same).</summary>
    internal static readonly IReadOnlyDictionary<string, HashSet<string>> CommandFields = new Dictionary<string, HashSet<string>>
    {
        ["variable"] = ["name", "value", "requires_grad"],
        ["constant"] = ["name", "value"],
        ["apply"] = ["op", "inputs", "attrs", "output", "program"],
        ["program"] = ["program"],
        ["fetch"] = ["name"],
        ["backward"] = ["output", "seed", "retain_graph", "create_graph"],
        ["grad"] = ["name", "output"],
        ["zero_grad"] = ["names"],
        ["detach"] = ["name", "output"],
        ["no_grad"] = ["enabled"],
        ["release"] = ["names"],
    };

    public static List<SessionCommand> ReadCommands(JsonElement body, LimitsOptions limits)
    {
        JsonFields.ExpectObject(body, "", BatchFields);
        if (JsonFields.Get(body, "commands") is not { ValueKind: JsonValueKind.Array } commands)
            throw EngineException.InvalidArgument("the body must be {\"commands\": [...]}");
        var result = new List<SessionCommand>(commands.GetArrayLength());
        int index = 0;
        foreach (var c in commands.EnumerateArray())
        {
            try
            {
                result.Add(ReadCommand(c, limits));
            }
            catch (EngineException e)
            {
                throw new SessionBatchException(index, e, []);
            }
            index++;
        }
        return result;
    }

    public static SessionCommand ReadCommand(JsonElement c, LimitsOptions limits)
    {
        if (c.ValueKind != JsonValueKind.Object) throw EngineException.InvalidArgument($"each command must be an object, got {JsonFields.Describe(c)}");
        string kind;
        JsonElement args;
        bool flat = c.TryGetProperty("command", out var named);
        if (flat)
        {
            kind = JsonFields.AsString(named, "command");
            args = c;
        }
        else
        {
            using var props = c.EnumerateObject();
            if (!props.MoveNext()) throw EngineException.InvalidArgument("a command is an object with one key: its name");
            kind = props.Current.Name;
            args = props.Current.Value;
            if (props.MoveNext()) throw EngineException.InvalidArgument("a command is an object with one key: its name");
        }
        if (args.ValueKind != JsonValueKind.Object && kind != "program")
            throw JsonFields.WrongType(Clip(kind), "an object of the command's fields", args);
        if (args.ValueKind == JsonValueKind.Object && CommandFields.TryGetValue(kind, out var fields))
            JsonFields.ExpectObject(args, flat ? "" : kind, flat ? [.. fields, "command"] : fields);
        long maxElements = limits.MaxTensorElements;
        return kind switch
        {
            "variable" => new SessionCommand.Variable(Name(args, kind), Tensor(args, "value", maxElements), Bool(args, kind, "requires_grad", true)),
            "constant" => new SessionCommand.Constant(Name(args, kind), Tensor(args, "value", maxElements)),
            "apply" when JsonFields.Get(args, "program") is not null => new SessionCommand.Program(JsonFields.RequiredString(args, "program", kind)),
            "apply" => new SessionCommand.Apply(JsonFields.RequiredString(args, "op", kind), Inputs(args),
                JsonFields.Get(args, "attrs") is { } a ? GraphJson.ReadAttributes(a, limits.Graph().Guard()) : Engine.Ops.Attributes.Empty,
                JsonFields.RequiredString(args, "output", kind)),
            "program" => new SessionCommand.Program(args.ValueKind == JsonValueKind.String ? args.GetString()! : JsonFields.RequiredString(args, "program", kind)),
            "fetch" => new SessionCommand.Fetch(Name(args, kind)),
            "backward" => new SessionCommand.Backward(JsonFields.RequiredString(args, "output", kind),
                JsonFields.Get(args, "seed") is { } s ? TensorJson.Read(s, "seed", maxElements) : null,
                Bool(args, kind, "retain_graph", false), Bool(args, kind, "create_graph", false)),
            "grad" => new SessionCommand.Grad(Name(args, kind), JsonFields.String(args, "output", kind)),
            "zero_grad" => new SessionCommand.ZeroGrad(JsonFields.Names(args, "names", kind) ?? []),
            "detach" => new SessionCommand.Detach(Name(args, kind), JsonFields.RequiredString(args, "output", kind)),
            "no_grad" => new SessionCommand.NoGrad(Bool(args, kind, "enabled", true)),
            "release" => new SessionCommand.Release(JsonFields.Names(args, "names", kind) ?? []),
            _ => throw EngineException.InvalidArgument(
                $"unknown command '{Clip(kind)}' (variable, constant, apply, fetch, backward, grad, zero_grad, detach, no_grad, release)"),
        };
    }

    private static List<string> Inputs(JsonElement args)
    {
        if (JsonFields.Get(args, "inputs") is not { } inputs) return [];
        if (inputs.ValueKind != JsonValueKind.Array) throw JsonFields.WrongType("apply.inputs", "a list", inputs);
        // Number literals travel as their invariant text; the session turns them into scalars.
        return inputs.EnumerateArray().Select(i => i.ValueKind switch
        {
            JsonValueKind.String => i.GetString()!,
            JsonValueKind.Number => i.GetRawText(),
            _ => throw JsonFields.WrongType("apply.inputs", "value names or numbers", i),
        }).ToList();
    }

    private static string Name(JsonElement args, string kind) => JsonFields.RequiredString(args, "name", kind);

    private static bool Bool(JsonElement args, string kind, string property, bool fallback) => JsonFields.Bool(args, property, kind) ?? fallback;

    private static Engine.Tensors.HostTensor Tensor(JsonElement args, string property, long maxElements) =>
        JsonFields.Get(args, property) is { } v
            ? TensorJson.Read(v, property, maxElements)
            : throw EngineException.InvalidArgument($"the command needs a tensor '{property}'");

    private static string Clip(string s) => EngineException.Clip(s);
}
