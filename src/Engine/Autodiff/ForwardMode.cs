using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Autodiff;

/// <summary>
/// Forward mode by tangent propagation: each input gets a dual (a view of it carrying a tangent), the function runs,
/// and every op pushes tangents along through its JVP rule as it goes. Loops and branches need nothing special:
/// the tangent follows whatever path the values take.
/// </summary>
public static class ForwardMode
{
    public static (Tensor[] Outputs, Tensor[] Tangents) Jvp(Func<Tensor[], Tensor[]> f, Tensor[] primals, Tensor?[] tangents)
    {
        if (tangents.Length != primals.Length)
            throw EngineException.InvalidArgument($"{primals.Length} inputs but {tangents.Length} tangents");
        var duals = new Tensor[primals.Length];
        for (int i = 0; i < primals.Length; i++)
        {
            duals[i] = F.Identity(primals[i]);
            duals[i].Name = primals[i].Name;
            if (tangents[i] is { } t && primals[i].DType.IsFloating())
            {
                if (t.Shape != primals[i].Shape)
                    throw EngineException.ShapeMismatch(
                        $"the tangent of '{primals[i].Name ?? $"input {i}"}' has shape {t.Shape} but the input has shape {primals[i].Shape}");
                duals[i].Tangent = t.DType == primals[i].DType ? t : F.Cast(t, primals[i].DType);
            }
        }
        var outputs = f(duals);
        var outTangents = new Tensor[outputs.Length];
        for (int i = 0; i < outputs.Length; i++)
        {
            var o = outputs[i];
            outTangents[i] = o.Tangent ?? o.Scope.Zeros(o.Shape, o.DType.IsFloating() ? o.DType : DType.Float32);
            o.Tangent = null;
        }
        foreach (var d in duals) d.Tangent = null;
        return (outputs, outTangents);
    }
}
