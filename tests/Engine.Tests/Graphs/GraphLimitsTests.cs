using AutogradService.Engine.Graphs;

namespace AutogradService.Engine.Tests.Graphs;

/// <summary>Each graph limit at its edge (accepted) and one past it (invalid_graph), counted while parsing.</summary>
public class GraphLimitsTests
{
    private static string Parenthesised(int depth) => "y = " + new string('(', depth) + "x" + new string(')', depth);

    [Fact]
    public void ExpressionDepth_AtTheLimit_Parses_OnePast_IsRefused()
    {
        // The expression itself is one level, each pair of parentheses one more.
        ProgramParser.Parse(Parenthesised(GraphLimits.MaxExpressionDepth - 1));
        var e = Assert.Throws<EngineException>(() => ProgramParser.Parse(Parenthesised(GraphLimits.MaxExpressionDepth)));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        Assert.Contains($"more than {GraphLimits.MaxExpressionDepth} deep", e.Message);
    }

    [Fact]
    public void NameLength_AtTheLimit_Parses_OnePast_IsRefused()
    {
        var limits = new GraphLimits { MaxNameLength = 64 };
        ProgramParser.Parse($"{new string('a', 64)} = x * 2", limits: limits);
        var e = Assert.Throws<EngineException>(() => ProgramParser.Parse($"{new string('a', 65)} = x * 2", limits: limits));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        Assert.Contains("65 characters", e.Message);
    }

    [Theory]
    [InlineData(nameof(GraphLimits.MaxNames))]
    [InlineData(nameof(GraphLimits.MaxNodes))]
    public void CountLimits_HaveAnExactEdge(string limit)
    {
        const string program = "a = x + 1\nb = a * y\nc = sin(b)\nd = c - a";
        GraphLimits With(int n) => limit == nameof(GraphLimits.MaxNames) ? new GraphLimits { MaxNames = n } : new GraphLimits { MaxNodes = n };
        bool Parses(int n)
        {
            try
            {
                ProgramParser.Parse(program, limits: With(n));
                return true;
            }
            catch (EngineException e) when (e.Code == ErrorCodes.InvalidGraph && e.Message.Contains("its limit"))
            {
                return false;
            }
        }
        // The smallest limit that admits the program; one less refuses it, and it is at least what the program holds.
        int edge = Enumerable.Range(1, 64).First(Parses);
        Assert.False(Parses(edge - 1));
        Assert.True(edge >= (limit == nameof(GraphLimits.MaxNames) ? 6 : 4), $"edge {edge}");
    }
}
