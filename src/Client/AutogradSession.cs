using AutogradService.Client.Transport;
using AutogradService.Contracts.V1;
using Attribute = AutogradService.Contracts.V1.Attribute;

namespace AutogradService.Client;

/// <summary>
/// A define-by-run session: commands are queued as your code runs and sent together — one round trip — when a value
/// must come back (<see cref="FetchAsync"/>, <see cref="ScalarAsync"/>) or on <see cref="FlushAsync"/>. Values that
/// ride in a batch (<see cref="Fetch"/>, <see cref="Grad"/>) are tasks that complete when it returns. Dispose it to free
/// the session's memory on the service. Not thread-safe: one flow of commands, as in the client's own code.
/// </summary>
public sealed class AutogradSession : IAsyncDisposable
{
    private readonly ISessionChannel _channel;
    private List<(Command Command, TaskCompletionSource<Tensor>? Result)> _pending = [];
    private bool _disposed;

    internal AutogradSession(ISessionChannel channel) => _channel = channel;

    /// <summary>Commands queued and not yet sent.</summary>
    public int Pending => _pending.Count;

    public void Variable(string name, Tensor value, bool requiresGrad = true) =>
        Queue(new Command { Variable = new VariableCommand { Name = name, Value = value, RequiresGrad = requiresGrad } });

    public void Constant(string name, Tensor value) =>
        Queue(new Command { Constant = new ConstantCommand { Name = name, Value = value } });

    /// <summary>Applies an op: <c>Apply("mul", "b", "a", "2")</c> binds b = a * 2 (numbers are weakly typed literals).</summary>
    public void Apply(string op, string output, params string[] inputs) => Apply(op, inputs, output);

    public void Apply(string op, IEnumerable<string> inputs, string output, IReadOnlyDictionary<string, Attribute>? attrs = null)
    {
        var apply = new ApplyCommand { Op = op, Output = output };
        apply.Inputs.Add(inputs);
        if (attrs is not null)
            foreach (var (k, v) in attrs) apply.Attrs[k] = v;
        Queue(new Command { Apply = apply });
    }

    /// <summary>Lines of the text syntax; every assigned name is bound in the session.</summary>
    public void Program(string text) => Queue(new Command { Apply = new ApplyCommand { Program = text } });

    public void Backward(string output, Tensor? seed = null, bool retainGraph = false, bool createGraph = false) =>
        Queue(new Command { Backward = new BackwardCommand { Output = output, Seed = seed, RetainGraph = retainGraph, CreateGraph = createGraph } });

    public void ZeroGrad(params string[] names) => Queue(new Command { ZeroGrad = new ZeroGradCommand { Names = { names } } });

    public void Detach(string name, string output) => Queue(new Command { Detach = new DetachCommand { Name = name, Output = output } });

    public void NoGrad(bool enabled) => Queue(new Command { NoGrad = new NoGradCommand { Enabled = enabled } });

    public void Release(params string[] names) => Queue(new Command { Release = new ReleaseCommand { Names = { names } } });

    /// <summary>Queues a fetch; the task completes when the batch it rides in comes back.</summary>
    public Task<Tensor> Fetch(string name) => QueueWithResult(new Command { Fetch = new FetchCommand { Name = name } });

    /// <summary>Queues reading a leaf's gradient (bound as <paramref name="output"/> too, when given).</summary>
    public Task<Tensor> Grad(string name, string? output = null) =>
        QueueWithResult(new Command { Grad = new GradCommand { Name = name, Output = output ?? "" } });

    /// <summary>Fetches a value now: everything queued goes with it, in one round trip.</summary>
    public async Task<Tensor> FetchAsync(string name, CancellationToken ct = default)
    {
        var value = Fetch(name);
        await FlushAsync(ct).ConfigureAwait(false);
        return await value.ConfigureAwait(false);
    }

    /// <summary>A leaf's gradient now: everything queued goes with it, in one round trip.</summary>
    public async Task<Tensor> GradAsync(string name, CancellationToken ct = default)
    {
        var value = Grad(name);
        await FlushAsync(ct).ConfigureAwait(false);
        return await value.ConfigureAwait(false);
    }

    /// <summary>A scalar's value now (for the client's own <c>while</c> and <c>if</c>).</summary>
    public async Task<double> ScalarAsync(string name, CancellationToken ct = default) =>
        (await FetchAsync(name, ct).ConfigureAwait(false)).ToScalar();

    /// <summary>
    /// Sends every queued command now. The first failure is thrown; the tasks of values that did not come back (the
    /// failed command's, the ones after it, and over REST every one in the batch) fail with it.
    /// </summary>
    public async Task FlushAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_pending.Count == 0) return;
        var batch = _pending;
        _pending = [];
        IReadOnlyList<Reply> replies;
        try
        {
            replies = await _channel.RunAsync(batch.Select(b => b.Command).ToList(), ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            foreach (var (_, result) in batch) result?.TrySetException(e);
            throw;
        }
        AutogradException? failure = null;
        for (int i = 0; i < replies.Count && failure is null; i++)
            if (replies[i].Error is { } error)
                failure = new AutogradException(error.Code, error.Detail, Empty(error.Node), Empty(error.Op), Empty(error.Input), i);
        for (int i = 0; i < batch.Count; i++)
        {
            var result = batch[i].Result;
            if (result is null) continue;
            var reply = i < replies.Count ? replies[i] : null;
            // A value that came back stands (gRPC answers every command); one that did not shares the batch's failure
            // (REST answers a failed batch with its error alone).
            if (reply?.Value is { } value && reply.Error is null) result.TrySetResult(value);
            else if (failure is not null) result.TrySetException(failure);
            else result.TrySetException(new AutogradException("internal", $"command {i} ({batch[i].Command.KindCase}) brought no value back", commandIndex: i));
        }
        if (failure is not null) throw failure;
    }

    private static string? Empty(string s) => string.IsNullOrEmpty(s) ? null : s;

    private void Queue(Command command)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _pending.Add((command, null));
    }

    private Task<Tensor> QueueWithResult(Command command)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var result = new TaskCompletionSource<Tensor>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending.Add((command, result));
        return result.Task;
    }

    /// <summary>Closes the session on the service (queued commands are dropped, their tasks cancelled).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var (_, result) in _pending) result?.TrySetCanceled();
        _pending = [];
        await _channel.DisposeAsync().ConfigureAwait(false);
    }
}
