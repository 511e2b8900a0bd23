using BenchmarkDotNet.Running;

namespace AutogradService.Codecs.Bench;

/// <summary>The tensor codecs alone, in MB/s of wire bytes: <c>dotnet run -c Release -- --filter '*'</c> (BenchmarkDotNet's arguments).</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        BenchmarkSwitcher.FromTypes([typeof(CodecSuite)]).Run(args, CodecSuite.Config());
        return 0;
    }
}
