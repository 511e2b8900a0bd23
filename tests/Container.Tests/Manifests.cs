using System.Globalization;
using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace AutogradService.Container.Tests;

/// <summary>A parsed YAML document with dotted-path look-ups (<c>spec.template.spec</c>), for the manifest tests.</summary>
public sealed class Yaml(object? value)
{
    public object? Value { get; } = value;

    public static IReadOnlyList<Yaml> LoadAll(string path)
    {
        var deserializer = new DeserializerBuilder().Build();
        var parser = new Parser(new StringReader(File.ReadAllText(path)));
        parser.Consume<StreamStart>();
        var documents = new List<Yaml>();
        while (parser.Accept<DocumentStart>(out _))
        {
            var doc = deserializer.Deserialize<object?>(parser);
            if (doc is not null) documents.Add(new Yaml(doc));
        }
        return documents;
    }

    public static Yaml Load(string path) => LoadAll(path).Single();

    public Yaml this[string path]
    {
        get
        {
            object? current = Value;
            foreach (var key in path.Split('.'))
            {
                current = current switch
                {
                    Dictionary<object, object?> map => map.TryGetValue(key, out var v) ? v : throw Missing(path, key),
                    List<object?> list when int.TryParse(key, out int i) && i < list.Count => list[i],
                    _ => throw Missing(path, key),
                };
            }
            return new Yaml(current);
        }
    }

    public bool Has(string path)
    {
        try
        {
            _ = this[path];
            return true;
        }
        catch (KeyNotFoundException)
        {
            return false;
        }
    }

    public string Str => Value as string ?? throw new InvalidOperationException($"not a scalar: {Value}");

    public long Long => long.Parse(Str, CultureInfo.InvariantCulture);

    public bool Bool => bool.Parse(Str);

    public IReadOnlyList<Yaml> Items => (Value as List<object?> ?? throw new InvalidOperationException($"not a list: {Value}")).Select(v => new Yaml(v)).ToArray();

    public IReadOnlyDictionary<string, string> StringMap =>
        (Value as Dictionary<object, object?> ?? throw new InvalidOperationException($"not a map: {Value}"))
        .ToDictionary(kv => (string)kv.Key, kv => kv.Value as string ?? "");

    /// <summary>The item of a list of maps whose <c>name</c> is <paramref name="name"/>.</summary>
    public Yaml Named(string name) => Items.SingleOrDefault(i => i.Has("name") && i["name"].Str == name)
        ?? throw new KeyNotFoundException($"no item named '{name}'");

    private static KeyNotFoundException Missing(string path, string key) => new($"'{key}' of '{path}' is not there");
}

/// <summary>Paths of the repository, found from the test assembly upwards.</summary>
public static class Repo
{
    public static string Root { get; } = Find();

    public static string File(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>The service's configuration defaults (src/Api/appsettings.json), section <c>Limits</c> or <c>Server</c>.</summary>
    public static JsonElement Defaults(string section)
    {
        using var doc = JsonDocument.Parse(System.IO.File.ReadAllText(File("src", "Api", "appsettings.json")));
        return doc.RootElement.GetProperty(section).Clone();
    }

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "AutogradService.sln"))) return dir.FullName;
        throw new InvalidOperationException("AutogradService.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>Kubernetes quantities as bytes or cores ("4Gi", "512Mi", "2", "500m").</summary>
public static class Quantity
{
    public static long Bytes(string q)
    {
        (string suffix, long factor)[] units = [("Ki", 1L << 10), ("Mi", 1L << 20), ("Gi", 1L << 30), ("Ti", 1L << 40), ("k", 1000), ("M", 1_000_000), ("G", 1_000_000_000)];
        foreach (var (suffix, factor) in units)
            if (q.EndsWith(suffix, StringComparison.Ordinal)) return long.Parse(q[..^suffix.Length], CultureInfo.InvariantCulture) * factor;
        return long.Parse(q, CultureInfo.InvariantCulture);
    }

    public static double Cores(string q) =>
        q.EndsWith('m') ? double.Parse(q[..^1], CultureInfo.InvariantCulture) / 1000 : double.Parse(q, CultureInfo.InvariantCulture);

    /// <summary>Compose's memory sizes ("4g", "512m").</summary>
    public static long ComposeBytes(string q)
    {
        var lower = q.ToLowerInvariant();
        long factor = lower[^1] switch { 'k' => 1L << 10, 'm' => 1L << 20, 'g' => 1L << 30, _ => 1 };
        return long.Parse(factor == 1 ? lower : lower[..^1], CultureInfo.InvariantCulture) * factor;
    }
}
