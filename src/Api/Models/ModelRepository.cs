using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.RegularExpressions;
using AutogradService.Api.Json;
using AutogradService.Api.Options;
using AutogradService.Api.Security;
using AutogradService.Engine;
using AutogradService.Engine.Graphs;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Models;

/// <summary>A registered model: its graph, the plan built when it was registered, the caller that owns it and its
/// stored size (what the model-bytes quota counts).</summary>
public sealed record RegisteredModel(string Name, Graph Graph, Plan Plan, string Owner, long Bytes);

/// <summary>
/// Models live as JSON files in the model repository folder (<c>{"owner", "graph"}</c>), written atomically (temp file,
/// then rename) so a crash never leaves half a model, and loaded at start-up so they survive restarts; temp files an
/// interrupted write left behind are removed then. Registering validates the graph and plans it once; a request that
/// names the model reuses that work. Names are one namespace, and a model belongs to the caller that registered it:
/// to any other caller (but an admin) it does not exist.
/// </summary>
public sealed partial class ModelRepository(
    IOptions<ServerOptions> options, IOptions<LimitsOptions> limits, IOptions<QuotaOptions> quotas, CallerAccessor callers, ILogger<ModelRepository> log)
{
    /// <summary>A temp file older than this is no write in progress (a write takes well under a second), even on a
    /// volume that several instances share.</summary>
    public static readonly TimeSpan StaleTempAge = TimeSpan.FromMinutes(10);

    private const string TempSuffix = ".tmp";

    private readonly ConcurrentDictionary<string, RegisteredModel> _models = new(StringComparer.Ordinal);
    private readonly string _folder = Path.GetFullPath(options.Value.ModelRepositoryPath);

    // Registering and deleting are rare: one at a time keeps a caller's quota check and its write one step.
    private readonly Lock _writes = new();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    private static partial Regex ValidName();

    public string Folder => _folder;

    /// <summary>The models <paramref name="caller"/> may see: its own, or every one for an admin.</summary>
    public IReadOnlyCollection<RegisteredModel> Visible(Caller caller) =>
        _models.Values.Where(m => caller.MaySee(m.Owner)).OrderBy(m => m.Name, StringComparer.Ordinal).ToArray();

    /// <summary>A model by name, for the current request's caller (a transform that names a model).</summary>
    public RegisteredModel Get(string name) => Get(name, callers.Current);

    /// <summary>
    /// A model by name. A miss looks in the folder too: on a shared volume another replica may have registered it
    /// after this one started.
    /// </summary>
    public RegisteredModel Get(string name, Caller caller) =>
        Find(name) is { } m && caller.MaySee(m.Owner) ? m : throw NotFound(name);

    public RegisteredModel Put(string name, Graph graph, Caller caller)
    {
        if (!ValidName().IsMatch(name))
            throw EngineException.InvalidArgument($"model name '{name}' must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit");
        long nodes = GraphSize.CountNodes(graph);
        if (nodes > limits.Value.MaxNodes)
            throw EngineException.InvalidGraph($"the graph has {nodes} nodes (subgraphs included), over the limit of {limits.Value.MaxNodes}");
        var plan = Plan.Build(graph);
        lock (_writes)
        {
            var existing = Find(name);
            // Another caller's name: the same answer as for a model that does not exist, so nothing of it shows.
            if (existing is not null && !caller.MaySee(existing.Owner))
                throw new EngineException(ErrorCodes.NotFound, $"the model name '{name}' is not available to this caller; choose another", input: name);
            var owner = existing?.Owner ?? caller.Id;
            var bytes = Serialize(owner, graph);
            if (caller.HasQuotas && owner == caller.Id) CheckQuotas(owner, existing, bytes.Length);

            Directory.CreateDirectory(_folder);
            var path = PathOf(name);
            var temp = path + $".{Guid.NewGuid():N}{TempSuffix}";
            File.WriteAllBytes(temp, bytes);
            File.Move(temp, path, overwrite: true);
            return _models[name] = new RegisteredModel(name, graph, plan, owner, bytes.Length);
        }
    }

    /// <summary>Deletes a model the caller may see; any other name is <c>not_found</c>.</summary>
    public void Delete(string name, Caller caller)
    {
        lock (_writes)
        {
            if (Find(name) is not { } m || !caller.MaySee(m.Owner) || !_models.TryRemove(name, out _)) throw NotFound(name);
            File.Delete(PathOf(name));
        }
    }

    /// <summary>Removes temp files interrupted writes left, then loads every stored model; a file that no longer
    /// validates is skipped with a warning.</summary>
    public void Load()
    {
        if (!Directory.Exists(_folder)) return;
        RemoveStaleTempFiles();
        foreach (var file in Directory.EnumerateFiles(_folder, "*.json")) TryLoad(file);
    }

    private void RemoveStaleTempFiles()
    {
        var cutoff = DateTime.UtcNow - StaleTempAge;
        foreach (var file in Directory.EnumerateFiles(_folder, "*" + TempSuffix))
        {
            try
            {
                if (File.GetLastWriteTimeUtc(file) >= cutoff) continue;
                File.Delete(file);
                log.LogInformation("removed {File}, left by an interrupted model write", file);
            }
            catch (IOException e)
            {
                log.LogWarning(e, "could not remove the stale temp file {File}", file);
            }
        }
    }

    private void CheckQuotas(string owner, RegisteredModel? replaced, long bytes)
    {
        var q = quotas.Value;
        var mine = _models.Values.Where(m => m.Owner == owner && m.Name != replaced?.Name).ToArray();
        if (replaced is null && mine.Length >= q.ModelsPerCaller)
            throw Quotas.Exceeded(Quotas.Models, q.ModelsPerCaller, TimeSpan.FromSeconds(60),
                $"this caller has {mine.Length} models, its quota of {q.ModelsPerCaller}; delete one to register another");
        long total = mine.Sum(m => m.Bytes) + bytes;
        if (total > q.ModelBytesPerCaller)
            throw Quotas.Exceeded(Quotas.ModelBytes, q.ModelBytesPerCaller, TimeSpan.FromSeconds(60),
                $"this model ({bytes} bytes) would bring this caller's models to {total} bytes, over its quota of {q.ModelBytesPerCaller}; delete or shrink one");
    }

    private RegisteredModel? Find(string name)
    {
        if (_models.TryGetValue(name, out var m)) return m;
        return ValidName().IsMatch(name) && File.Exists(PathOf(name)) ? TryLoad(PathOf(name)) : null;
    }

    private static byte[] Serialize(string owner, Graph graph)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteString("owner", owner);
            writer.WritePropertyName("graph");
            GraphJson.Write(writer, graph);
            writer.WriteEndObject();
        }
        return stream.ToArray();
    }

    private RegisteredModel? TryLoad(string file)
    {
        var name = Path.GetFileNameWithoutExtension(file);
        try
        {
            var bytes = File.ReadAllBytes(file);
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            // Files from before owners existed hold the bare graph: they belong to the anonymous caller.
            bool wrapped = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("graph", out _);
            var graph = GraphJson.Read(wrapped ? root.GetProperty("graph") : root);
            var owner = wrapped && root.TryGetProperty("owner", out var o) && o.GetString() is { Length: > 0 } s ? s : Caller.AnonymousId;
            return _models[name] = new RegisteredModel(name, graph, Plan.Build(graph), owner, bytes.Length);
        }
        catch (Exception e) when (e is EngineException or JsonException or IOException or InvalidOperationException)
        {
            log.LogWarning(e, "skipping model file {File}: it does not load", file);
            return null;
        }
    }

    private string PathOf(string name) => Path.Combine(_folder, name + ".json");

    private static EngineException NotFound(string name) => new(ErrorCodes.NotFound, $"no model named '{name}'", input: name);
}
