using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;
using static AutogradService.Engine.Tests.Graphs.GraphTestKit;

namespace AutogradService.Engine.Tests.Graphs;

public class ValidationTests
{
    private static EngineException Invalid(Graph g, IReadOnlyDictionary<string, InferredType>? types = null) =>
        Assert.Throws<EngineException>(() => GraphValidator.Validate(g, types));

    [Fact]
    public void UnknownOp_NamesNodeAndOp_AndSuggests()
    {
        var e = Invalid(G([P("x")], [N("sine", ["x"], "y")], "y"));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        Assert.Equal("y", e.Node);
        Assert.Equal("sine", e.Op);
        Assert.Contains("unknown op 'sine'", e.Message);
        Assert.Contains("did you mean 'sin'", e.Message);
    }

    [Fact]
    public void MissingValue_NamesTheInput()
    {
        var e = Invalid(G([P("x")], [N("add", ["x", "z"], "y", name: "adder")], "y"));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        Assert.Equal("adder", e.Node);
        Assert.Equal("z", e.Input);
        Assert.Contains("'z' is not defined", e.Message);
    }

    [Fact]
    public void MissingOutput_IsInvalid()
    {
        var e = Invalid(G([P("x")], [N("sin", ["x"], "y")], "w"));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        Assert.Equal("w", e.Input);
    }

    [Fact]
    public void DuplicateValue_TwoNodesWritingOneName()
    {
        var e = Invalid(G([P("x")], [N("sin", ["x"], "y"), N("cos", ["x"], "y")], "y"));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        Assert.Contains("duplicate value 'y'", e.Message);
        Assert.Equal("y", e.Input);
    }

    [Fact]
    public void DuplicateValue_InputAndConstantClash()
    {
        var g = new Graph([P("x")], [N("sin", ["x"], "y")], ["y"],
            new Dictionary<string, HostTensor> { ["x"] = HostTensor.Scalar(1) });
        var e = Invalid(g);
        Assert.Contains("duplicate value 'x': defined as an input and again as a constant", e.Message);
    }

    [Fact]
    public void DuplicateValue_NodeOutputShadowingAnInput()
    {
        var e = Invalid(G([P("x")], [N("sin", ["x"], "x")], "x"));
        Assert.Contains("duplicate value 'x'", e.Message);
    }

    [Fact]
    public void Cycle_NamesTheNodesInIt()
    {
        var g = G([P("x")],
        [
            N("add", ["b", "x"], "a", name: "first"),
            N("mul", ["a", "x"], "b", name: "second"),
            N("sin", ["x"], "y"),
        ], "y");
        var e = Invalid(g);
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        Assert.Contains("cycle", e.Message);
        Assert.Contains("'first'", e.Message);
        Assert.Contains("'second'", e.Message);
        Assert.DoesNotContain("'y'", e.Detail);
    }

    [Fact]
    public void SelfLoop_IsACycle()
    {
        var e = Invalid(G([P("x")], [N("add", ["y", "x"], "y")], "y"));
        Assert.Contains("cycle", e.Message);
    }

    [Fact]
    public void NodesInAnyOrder_AreSortedTopologically()
    {
        var g = G([P("x", DType.Float32, 3)],
        [
            N("add", ["s", "c"], "y"),
            N("cos", ["x"], "c"),
            N("sin", ["x"], "s"),
        ], "y");
        var plan = GraphValidator.Validate(g);
        Assert.Equal(["c", "s", "y"], plan.Order.Select(n => n.Outputs[0]).ToArray());
        Assert.Equal("float32[3]", plan.Types["y"].ToString());
    }

    [Fact]
    public void BadAttribute_UnknownName()
    {
        var e = Invalid(G([P("x")], [N("sum", ["x"], "y", Attributes.Of(("axis", 0)))], "y"));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        Assert.Equal("sum", e.Op);
        Assert.Contains("no attribute 'axis'", e.Message);
        Assert.Contains("'axes'", e.Message);
    }

    [Fact]
    public void BadAttribute_WrongKind()
    {
        var e = Invalid(G([P("x")], [N("sum", ["x"], "y", Attributes.Of(("axes", "first")))], "y"));
        Assert.Contains("attribute 'axes' of 'sum' must be a list of ints, got a string", e.Message);
    }

    [Fact]
    public void BadAttribute_MissingRequired()
    {
        var e = Invalid(G([P("x")], [N("reshape", ["x"], "y")], "y"));
        Assert.Contains("needs attribute 'shape'", e.Message);
        Assert.Equal("reshape", e.Op);
    }

    [Fact]
    public void LenientAttributeForms_AreAccepted()
    {
        // JSON numbers lose their int/float identity: 1.0 for an int list, 0 for a bool.
        var g = G([P("x", DType.Float32, 2, 3)], [N("sum", ["x"], "y", Attributes.Of(("axes", 1.0), ("keepdims", 0L)))], "y");
        Assert.Equal("float32[2]", GraphValidator.Validate(g).Types["y"].ToString());
    }

    [Fact]
    public void WrongInputCount()
    {
        var e = Invalid(G([P("x")], [N("add", ["x"], "y")], "y"));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        Assert.Contains("takes 2 input(s)", e.Message);
    }

    [Fact]
    public void WrongOutputCount()
    {
        var e = Invalid(G([P("x")], [new Node("sin", ["x"], ["y", "z"])], "y"));
        Assert.Contains("one output", e.Message);
    }

    [Fact]
    public void ShapeMismatch_CarriesNodeOpAndInputShapes()
    {
        var g = G([P("a", DType.Float32, 2, 3), P("b", DType.Float32, 4)], [N("add", ["a", "b"], "y", name: "plus")], "y");
        var e = Invalid(g);
        Assert.Equal(ErrorCodes.ShapeMismatch, e.Code);
        Assert.Equal("plus", e.Node);
        Assert.Equal("add", e.Op);
        Assert.Contains("a: float32[2, 3]", e.Message);
        Assert.Contains("b: float32[4]", e.Message);
    }

    [Fact]
    public void DTypeMismatch_CarriesNodeAndOp()
    {
        var g = G([P("a", DType.Float32, 2), P("b", DType.Float32, 2)], [N("logical_and", ["a", "b"], "y")], "y");
        var e = Invalid(g);
        Assert.Equal(ErrorCodes.DTypeMismatch, e.Code);
        Assert.Equal("y", e.Node);
        Assert.Equal("logical_and", e.Op);
    }

    [Fact]
    public void MixedFloatDTypes_ArePromotedAsAtRunTime()
    {
        var g = G([P("a", DType.Float32, 2), P("b", DType.Float64, 2)], [N("mul", ["a", "b"], "y")], "y");
        Assert.Equal("float64[2]", GraphValidator.Validate(g).Types["y"].ToString());
    }

    [Fact]
    public void UnknownSizes_DeferShapeChecks_ButStillCatchDTypes()
    {
        var g = G([P("a", DType.Float32, -1, 3), P("b", DType.Float32, 4)], [N("add", ["a", "b"], "y")], "y");
        var planned = GraphValidator.Validate(g); // [?, 3] + [4] can only be judged at run time
        Assert.Null(planned.Types["y"].Dims);
        Assert.Equal(DType.Float32, planned.Types["y"].DType);

        var ints = G([new Parameter("i", DType.Int64)], [N("sin", ["i"], "y")], "y");
        Assert.Equal(ErrorCodes.DTypeMismatch, Invalid(ints).Code);
    }

    [Fact]
    public void UnknownSizes_FailAtRunTimeWithTheNode()
    {
        var g = G([P("a", DType.Float32, -1, 3), P("b", DType.Float32, 4)], [N("add", ["a", "b"], "y", name: "plus")], "y");
        var plan = Plan.Build(g);
        using var scope = new ExecutionScope();
        var e = Assert.Throws<EngineException>(() => Interpreter.Run(scope, plan,
            Inputs(("a", scope.Zeros(new Shape(2, 3))), ("b", scope.Zeros(new Shape(4))))));
        Assert.Equal(ErrorCodes.ShapeMismatch, e.Code);
        Assert.Equal("plus", e.Node);
        Assert.Contains("float32[2, 3]", e.Message);
    }

    [Fact]
    public void InputTypes_MustFitTheDeclaration()
    {
        var g = G([P("x", DType.Float32, 3)], [N("sin", ["x"], "y")], "y");
        var shape = Invalid(g, new Dictionary<string, InferredType> { ["x"] = InferredType.From(new TensorType(new Shape(4), DType.Float32)) });
        Assert.Equal(ErrorCodes.ShapeMismatch, shape.Code);
        Assert.Equal("x", shape.Input);
        var dtype = Invalid(g, new Dictionary<string, InferredType> { ["x"] = InferredType.From(new TensorType(new Shape(3), DType.Float64)) });
        Assert.Equal(ErrorCodes.DTypeMismatch, dtype.Code);
    }

    [Fact]
    public void NumberLiteralInputs_AreConstants_AndNumberLikeNamesAreRefused()
    {
        var g = G([P("x", DType.Float64, 2)], [N("mul", ["x", "0.1"], "y")], "y");
        Assert.Equal("float64[2]", GraphValidator.Validate(g).Types["y"].ToString());
        var e = Invalid(G([P("x")], [N("sin", ["x"], "2")], "2"));
        Assert.Contains("reads as a number literal", e.Message);
    }

    [Fact]
    public void Subgraph_ClosureReadsAreChecked()
    {
        var body = G([P("v")], [N("mul", ["v", "scale"], "w")], "w"); // 'scale' is read from the enclosing graph
        var cond = G([P("v")], [N("lt", ["v", "100"], "go")], "go");
        var ok = G([S("x"), S("scale")],
            [new Node("while", ["x"], ["y"], Attributes.Of(("cond", cond), ("body", body)), "loop")], "y");
        Assert.Equal("float32[]", GraphValidator.Validate(ok).Types["y"].ToString());

        var missing = G([S("x")],
            [new Node("while", ["x"], ["y"], Attributes.Of(("cond", cond), ("body", body)), "loop")], "y");
        var e = Invalid(missing);
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        Assert.Equal("loop/body/w", e.Node);
        Assert.Equal("scale", e.Input);
    }

    [Fact]
    public void Subgraph_ClosureCreatesADependency()
    {
        // The while node is listed before the node computing the value its body reads: sorting must fix that.
        var body = G([P("v")], [N("mul", ["v", "k"], "w")], "w");
        var cond = G([P("v")], [N("lt", ["v", "100"], "go")], "go");
        var g = G([S("x")],
        [
            new Node("while", ["x"], ["y"], Attributes.Of(("cond", cond), ("body", body)), "loop"),
            N("add", ["x", "1"], "k"),
        ], "y");
        var plan = GraphValidator.Validate(g);
        Assert.Equal(["k", "y"], plan.Order.Select(n => n.Outputs[0]).ToArray());
        Assert.Contains("k", plan.Order[1].FreeNames);
    }

    [Fact]
    public void While_BodyMustKeepDTypes()
    {
        var body = G([P("v")], [N("gt", ["v", "0"], "w")], "w");
        var cond = G([P("v")], [N("lt", ["v", "100"], "go")], "go");
        var g = G([S("x")], [new Node("while", ["x"], ["y"], Attributes.Of(("cond", cond), ("body", body)), "loop")], "y");
        var e = Invalid(g);
        Assert.Equal(ErrorCodes.DTypeMismatch, e.Code);
        Assert.Equal("loop", e.Node);
        Assert.Equal("while", e.Op);
    }

    [Fact]
    public void While_CondMustBeABoolScalar_AndArityMustMatch()
    {
        var body = G([P("v")], [N("mul", ["v", "2"], "w")], "w");
        var notBool = G([P("v")], [N("sum", ["v"], "s")], "s");
        var g = G([S("x")], [new Node("while", ["x"], ["y"], Attributes.Of(("cond", notBool), ("body", body)))], "y");
        Assert.Equal(ErrorCodes.DTypeMismatch, Invalid(g).Code);

        var cond = G([P("v")], [N("lt", ["v", "100"], "go")], "go");
        var twoInputs = G([P("v"), P("u")], [N("mul", ["v", "u"], "w")], "w", "u");
        var arity = G([S("x")], [new Node("while", ["x"], ["y"], Attributes.Of(("cond", cond), ("body", twoInputs)))], "y");
        var e = Invalid(arity);
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        Assert.Contains("body graph takes 2 input(s)", e.Message);

        var vectorCond = G([P("v")], [N("lt", ["v", "100"], "go")], "go");
        var vector = G([P("x", DType.Float32, 3)], [new Node("while", ["x"], ["y"], Attributes.Of(("cond", vectorCond), ("body", body)))], "y");
        Assert.Equal(ErrorCodes.ShapeMismatch, Invalid(vector).Code);
    }

    [Fact]
    public void While_ShapeThatChangesBecomesUnknown()
    {
        // Each iteration appends nothing here, but broadcasting against a [3] closure turns a scalar into [3].
        var body = G([P("v")], [N("add", ["v", "ones"], "w"), N("sum", ["w"], "s")], "s");
        var cond = G([P("v")], [N("lt", ["v", "100"], "go")], "go");
        var loop = G([S("x"), P("ones", DType.Float32, 3)],
            [new Node("while", ["x"], ["y"], Attributes.Of(("cond", cond), ("body", body)))], "y");
        Assert.Equal("float32[]", GraphValidator.Validate(loop).Types["y"].ToString());

        var growing = G([P("v")], [N("add", ["v", "ones"], "w")], "w"); // [] -> [3]
        var grows = G([S("x"), P("ones", DType.Float32, 3)],
            [new Node("while", ["x"], ["y"], Attributes.Of(("cond", G([P("v")], [N("sum", ["v"], "s"), N("lt", ["s", "100"], "go")], "go")), ("body", growing)))], "y");
        Assert.Equal("float32[*]", GraphValidator.Validate(grows).Types["y"].ToString());
    }

    [Fact]
    public void If_BranchesMustAgree()
    {
        var then = G([P("v")], [N("sin", ["v"], "w")], "w");
        var otherwise = G([P("v")], [N("gt", ["v", "0"], "w")], "w");
        var g = G([S("x"), new Parameter("p", DType.Bool, [])],
            [new Node("if", ["p", "x"], ["y"], Attributes.Of(("then", then), ("else", otherwise)), "pick")], "y");
        var e = Invalid(g);
        Assert.Equal(ErrorCodes.DTypeMismatch, e.Code);
        Assert.Equal("pick", e.Node);

        var notBool = G([S("x")],
            [new Node("if", ["x", "x"], ["y"], Attributes.Of(("then", then), ("else", then)))], "y");
        Assert.Equal(ErrorCodes.DTypeMismatch, Invalid(notBool).Code);

        var missingElse = G([S("x"), new Parameter("p", DType.Bool, [])],
            [new Node("if", ["p", "x"], ["y"], Attributes.Of(("then", then)))], "y");
        Assert.Contains("needs attribute 'else'", Invalid(missingElse).Message);
    }

    [Fact]
    public void C5Graph_Validates_WithTypes()
    {
        var plan = GraphValidator.Validate(C5());
        Assert.Equal("float32[]", plan.Types["c"].ToString());
        Assert.Equal(NodeKind.While, plan.Order[1].Kind);
        Assert.NotNull(plan.Order[1].Body);
        var vector = GraphValidator.Validate(C5([3]));
        Assert.Equal("float32[3]", vector.Types["c"].ToString());
    }
}
