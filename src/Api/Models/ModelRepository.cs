using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.RegularExpressions;
using AutogradService.Api.Json;
using AutogradService.Api.Options;
using AutogradService.Engine;
using AutogradService.Engine.Graphs;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Models;

/// <summary>A registered model: its graph and the plan built when it was registered.</summary>
public sealed record RegisteredModel(string Name, Graph Graph, Plan Plan);

/// <summary>
/// Models live as JSON graph files in the model repository folder, written atomically (temp file, then rename) so a
/// crash never leaves half a model, and loaded at start-up so they survive restarts. Registering validates the graph
/// and plans it once; a request that names the model reuses that work.
/// </summary>
public sealed partial class ModelRepository(IOptions<ServerOptions> options, IOptions<LimitsOptions> limits, ILogger<ModelRepository> log)
{
    private readonly ConcurrentDictionary<string, RegisteredModel> _models = new(StringComparer.Ordinal);
    private readonly string _folder = Path.GetFullPath(options.Value.ModelRepositoryPath);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    private static partial Regex ValidName();

    public string Folder => _folder;

    public IReadOnlyCollection<RegisteredModel> All => _models.Values.OrderBy(m => m.Name, StringComparer.Ordinal).ToArray();

    /// <summary>
    /// A model by name. A miss looks in the folder too: on a shared volume another replica may have registered it
    /// after this one started.
    /// </summary>
    public RegisteredModel Get(string name)
    {
        if (_models.TryGetValue(name, out var m)) return m;
        if (ValidName().IsMatch(name) && File.Exists(PathOf(name)) && TryLoad(PathOf(name)) is { } loaded) return loaded;
        throw new EngineException(ErrorCodes.NotFound, $"no model named '{name}'", input: name);
    }

    public RegisteredModel Put(string name, Graph graph)
    {
        if (!ValidName().IsMatch(name))
            throw EngineException.InvalidArgument($"model name '{name}' must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit");
        long nodes = Execution.TransformService.CountNodes(graph);
        if (nodes > limits.Value.MaxNodes)
            throw EngineException.InvalidGraph($"the graph has {nodes} nodes (subgraphs included), over the limit of {limits.Value.MaxNodes}");
        var model = new RegisteredModel(name, graph, Plan.Build(graph));
        Directory.CreateDirectory(_folder);
        var path = PathOf(name);
        var temp = path + $".{Guid.NewGuid():N}.tmp";
        using (var stream = File.Create(temp))
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
            GraphJson.Write(writer, graph);
        File.Move(temp, path, overwrite: true);
        _models[name] = model;
        return model;
    }

    public bool Delete(string name)
    {
        if (!_models.TryRemove(name, out _)) return false;
        File.Delete(PathOf(name));
        return true;
    }

    /// <summary>Loads every stored model; a file that no longer validates is skipped with a warning.</summary>
    public void Load()
    {
        if (!Directory.Exists(_folder)) return;
        foreach (var file in Directory.EnumerateFiles(_folder, "*.json")) TryLoad(file);
    }

    private RegisteredModel? TryLoad(string file)
    {
        var name = Path.GetFileNameWithoutExtension(file);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            var graph = GraphJson.Read(doc.RootElement);
            return _models[name] = new RegisteredModel(name, graph, Plan.Build(graph));
        }
        catch (Exception e) when (e is EngineException or JsonException or IOException)
        {
            log.LogWarning(e, "skipping model file {File}: it does not load", file);
            return null;
        }
    }

    private string PathOf(string name) => Path.Combine(_folder, name + ".json");
}
