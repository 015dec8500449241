"""The sync/async bridge: how pipeline steps run sync and async callables, from sync code
(WSGI) and from an event loop (ASGI), always inside the request's own context."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import sys
import threading

import anyio
import anyio.lowlevel
import pytest

from ctxflask import bridge
from ctxflask.bridge import workers

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


async def _steps(calls, log):
    """Steps that run each callable in turn, logging what each saw and returned."""
    for f in calls:
        log.append(await bridge.call(f))
    return "done"


def sync_set(value):
    def f():
        seen = var.get()
        var.set(value)
        return (seen, threading.get_ident())

    return f


def async_set(value):
    async def f():
        seen = var.get()
        await anyio.lowlevel.checkpoint()
        var.set(value)
        return (seen, threading.get_ident())

    return f


def test_run_steps_runs_sync_and_async_callables_in_one_context():
    ctx = contextvars.copy_context()
    log = []
    calls = [sync_set("a"), async_set("b"), sync_set("c"), async_set("d")]
    assert bridge.run_steps(_steps(calls, log), ctx) == "done"
    assert [seen for seen, _ in log] == ["unset", "a", "b", "c"]
    assert ctx[var] == "d"
    assert var.get() == "unset"  # the caller's own context is untouched


def test_run_steps_reuses_the_threads_event_loop():
    loops = []

    async def which_loop():
        return asyncio.get_running_loop()

    for _ in range(3):
        bridge.run_steps(_steps([which_loop], loops), contextvars.copy_context())
    assert loops[0] is loops[1] is loops[2]
    assert not loops[0].is_closed()

    other = []
    thread = threading.Thread(
        target=lambda: bridge.run_steps(
            _steps([which_loop], other), contextvars.copy_context()
        )
    )
    thread.start()
    thread.join()
    assert other[0] is not loops[0]


def test_exceptions_of_callables_are_thrown_into_the_steps():
    def boom():
        raise KeyError("x")

    async def async_boom():
        raise ValueError("y")

    async def steps():
        caught = []
        for f in (boom, async_boom):
            try:
                await bridge.call(f)
            except (KeyError, ValueError) as e:
                caught.append(type(e).__name__)
        return caught

    assert bridge.run_steps(steps(), contextvars.copy_context()) == [
        "KeyError",
        "ValueError",
    ]


def test_an_exception_the_steps_raise_propagates():
    async def steps():
        await bridge.call(lambda: None)
        raise LookupError("from the steps")

    with pytest.raises(LookupError, match="from the steps"):
        bridge.run_steps(steps(), contextvars.copy_context())


def test_sync_wrapper_returning_a_coroutine_is_awaited():
    async def inner(x):
        await asyncio.sleep(0)
        return x * 2

    def unaware_decorator(f):
        @functools.wraps(f)
        def wrapper(*args):
            return f(*args)

        return wrapper

    wrapped = unaware_decorator(inner)
    assert not bridge.is_async_callable(wrapped)
    assert bridge.run_steps(_steps([lambda: wrapped(21)], log := []), None) == "done"
    assert log == [42]


def test_is_async_callable_sees_through_partials_and_methods():
    async def coro_fn(a):
        return a

    class Handler:
        async def __call__(self):
            return 1

        async def method(self):
            return 2

    assert bridge.is_async_callable(coro_fn)
    assert bridge.is_async_callable(functools.partial(coro_fn, 1))
    assert bridge.is_async_callable(Handler())
    assert bridge.is_async_callable(Handler().method)
    assert not bridge.is_async_callable(lambda: None)
    assert not bridge.is_async_callable(print)


def test_a_functions_placement_follows_marks_set_after_it_was_placed():
    from ctxflask.bridge import callables

    def sync_fn():
        pass

    async def async_fn():
        pass

    assert callables.placement(sync_fn) == callables.IN_WORKER
    bridge.nonblocking(sync_fn)
    assert callables.placement(sync_fn) == callables.NONBLOCKING
    assert callables.placement(async_fn) == callables.ON_LOOP
    bridge.in_thread(async_fn)  # which itself asks whether it is async
    assert callables.placement(async_fn) == callables.IN_WORKER_LOOP


def test_a_wrapper_made_with_wraps_is_placed_for_itself():
    from ctxflask.bridge import callables

    def sync_fn():
        return "sync"

    assert callables.placement(sync_fn) == callables.IN_WORKER

    @functools.wraps(sync_fn)  # copies the function's __dict__ to the wrapper
    async def wrapper():
        return sync_fn()

    assert bridge.is_async_callable(wrapper)
    assert callables.placement(wrapper) == callables.ON_LOOP
    assert callables.placement(sync_fn) == callables.IN_WORKER


def test_call_in_current_context_copies_async_changes_back():
    async def set_it():
        var.set("from async")

    ctx = contextvars.copy_context()
    ctx.run(bridge.call_in, None, set_it)
    assert ctx[var] == "from async"


@pytest.mark.asyncio
async def test_sync_entry_from_a_running_loop_uses_a_helper_thread():
    # Sync code (e.g. the WSGI test client) called from async code: this thread's loop
    # is busy, so async callables run on a helper thread's loop, same semantics.
    async def where():
        var.set("changed")
        return threading.get_ident()

    ctx = contextvars.copy_context()
    log = []
    bridge.run_steps(_steps([where], log), ctx)
    assert ctx[var] == "changed"
    assert log[0] != threading.get_ident()


# -- the async driver, on asyncio and trio ---------------------------------------------------


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.mark.anyio
async def test_run_steps_async_keeps_changes_across_threads_and_the_loop():
    ctx = contextvars.copy_context()
    log = []
    calls = [
        sync_set("a"),
        sync_set("b"),
        async_set("c"),
        sync_set("d"),
        async_set("e"),
    ]
    assert await bridge.run_steps_async(_steps(calls, log), ctx) == "done"
    assert [seen for seen, _ in log] == ["unset", "a", "b", "c", "d"]
    assert ctx[var] == "e"
    loop_thread = threading.get_ident()
    threads = [ident for _, ident in log]
    # Sync callables never run on the loop thread; consecutive ones share one trip.
    assert threads[0] != loop_thread
    assert threads[0] == threads[1]
    assert threads[2] == loop_thread
    assert threads[3] != loop_thread
    assert threads[4] == loop_thread


@pytest.mark.anyio
async def test_run_steps_async_runs_nonblocking_callables_on_the_loop():
    @bridge.nonblocking
    def cheap():
        return threading.get_ident()

    log = []
    await bridge.run_steps_async(_steps([cheap], log), contextvars.copy_context())
    assert log == [threading.get_ident()]


@pytest.mark.anyio
async def test_run_steps_async_throws_callable_errors_into_the_steps():
    def boom():
        raise KeyError("sync")

    async def async_boom():
        raise ValueError("async")

    async def steps():
        caught = []
        for f in (boom, async_boom, boom):
            try:
                await bridge.call(f)
            except (KeyError, ValueError) as e:
                caught.append(str(e))
        return caught

    caught = await bridge.run_steps_async(steps(), contextvars.copy_context())
    assert caught == ["'sync'", "async", "'sync'"]


@pytest.mark.anyio
async def test_run_steps_async_propagates_errors_raised_by_the_steps_in_a_thread():
    async def steps():
        await bridge.call(lambda: None)  # the steps move to a worker thread here
        raise LookupError("raised in the thread")

    with pytest.raises(LookupError, match="raised in the thread"):
        await bridge.run_steps_async(steps(), contextvars.copy_context())


@pytest.mark.anyio
async def test_run_steps_async_bounds_worker_threads():
    pool = workers.Workers(object(), 2)
    running = 0
    peak = 0
    lock = threading.Lock()

    def work():
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        threading.Event().wait(0.01)
        with lock:
            running -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(
                bridge.run_steps_async,
                _steps([work], []),
                contextvars.copy_context(),
                pool,
            )
    assert peak == 2


@pytest.mark.anyio
async def test_run_steps_async_lets_the_steps_await_async_callables_themselves():
    # No trip through the driver: the callable's caller is the step, however often the
    # callable waits on the loop, and what it sets is seen by the next callable.
    async def waits():
        caller = sys._getframe(1).f_code.co_name
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        var.set("set after waiting")
        return caller

    ctx = contextvars.copy_context()
    log = []
    await bridge.run_steps_async(_steps([waits, async_set("next")], log), ctx)
    assert log[0] == "_steps"
    assert log[1][0] == "set after waiting"
    assert ctx[var] == "next"


@pytest.mark.anyio
async def test_run_steps_async_runs_before_step_before_each_async_callable():
    order = []

    async def before(invoke):
        order.append(f"before {invoke.fn.__name__}")
        return True  # needed again

    async def first():
        order.append("first")

    async def second():
        order.append("second")

    def between():
        order.append("between")

    steps = _steps([first, between, second], [])
    await bridge.run_steps_async(steps, contextvars.copy_context(), before_step=before)
    assert order == ["before first", "first", "between", "before second", "second"]


@pytest.mark.anyio
async def test_run_steps_async_stops_calling_before_step_once_it_returns_false():
    order = []
    var = contextvars.ContextVar("var", default="unset")

    async def before(invoke):
        order.append(f"before {invoke.fn.__name__}")
        return invoke.fn is not second  # done once the second has its turn

    async def first():
        order.append("first")

    async def second():
        order.append("second")

    async def third():
        order.append(f"third sees {var.get()}")

    def between():
        var.set("set in between")
        order.append("between")

    ctx = contextvars.copy_context()
    steps = _steps([first, between, second, third, third], [])
    await bridge.run_steps_async(steps, ctx, before_step=before)
    assert order == [
        "before first",
        "first",
        "between",
        "before second",
        "second",
        "third sees set in between",
        "third sees set in between",
    ]


@pytest.mark.anyio
async def test_cancelling_run_steps_async_reaches_the_async_callable_the_steps_await():
    log = []

    async def waits():
        try:
            await anyio.sleep(30)
        finally:
            log.append("callable cleaned up")

    async def steps():
        try:
            await bridge.call(waits)
        finally:
            log.append("steps cleaned up")

    with anyio.move_on_after(0.05) as scope:
        await bridge.run_steps_async(steps(), contextvars.copy_context())
    assert scope.cancelled_caught
    assert log == ["callable cleaned up", "steps cleaned up"]


@pytest.mark.anyio
async def test_a_sync_driver_inside_an_async_callable_still_runs_every_callable_itself():
    # As `with app.app_context():` does in an async view: its pop runs steps with the
    # sync driver, from code the async driver's steps are awaiting.
    inner = []

    async def nests():
        calls = [sync_set("inner sync"), async_set("inner async")]
        return bridge.run_steps(_steps(calls, inner), None)

    ctx = contextvars.copy_context()
    log = []
    await bridge.run_steps_async(_steps([nests, async_set("after")], log), ctx)
    assert log[0] == "done"
    assert [seen for seen, _ in inner] == ["unset", "inner sync"]
    assert log[1][0] == "inner async"
    assert ctx[var] == "after"


@pytest.mark.anyio
async def test_steps_after_shield_rest_run_to_their_end_despite_cancellation():
    log = []

    async def winds_down():
        await anyio.sleep(0.05)  # cancelled already: only a shield lets this finish
        log.append("wound down")

    async def steps():
        try:
            await bridge.call(anyio.sleep, 30)
        except BaseException:
            await bridge.shield_rest()
            await bridge.call(winds_down)
            await bridge.call(lambda: log.append("sync too"))
            raise

    with anyio.move_on_after(0.05) as scope:
        await bridge.run_steps_async(steps(), contextvars.copy_context())
    assert scope.cancelled_caught
    assert log == ["wound down", "sync too"]


def test_shield_rest_is_a_no_op_for_the_sync_driver():
    async def steps():
        await bridge.shield_rest()
        return await bridge.call(lambda: "went on")

    assert bridge.run_steps(steps(), contextvars.copy_context()) == "went on"


# -- a worker thread reaching its loop -------------------------------------------------------


@pytest.mark.anyio
async def test_run_on_loop_awaits_on_the_loop_from_a_worker_thread():
    loop_thread = threading.get_ident()

    async def on_loop(x):
        await anyio.lowlevel.checkpoint()
        return x * 2, threading.get_ident()

    pool = workers.Workers(object(), 2)
    result = await pool.run(bridge.run_on_loop, on_loop, 21)
    assert result == (42, loop_thread)


@pytest.mark.anyio
async def test_run_on_loop_from_the_loop_itself_says_so():
    async def never():
        raise AssertionError("not run")

    with pytest.raises(
        bridge.NotInWorkerThread, match="worker thread of the event loop"
    ):
        bridge.run_on_loop(never)


def test_run_on_loop_from_a_plain_thread_says_so():
    async def never():
        raise AssertionError("not run")

    errors = []

    def plain():
        try:
            bridge.run_on_loop(never)
        except bridge.NotInWorkerThread as e:
            errors.append(e)

    thread = threading.Thread(target=plain)
    thread.start()
    thread.join()
    assert len(errors) == 1


# -- a body from either side ------------------------------------------------------------------


def _sync_chunks(log):
    try:
        yield "a"
        yield b"b"
        yield bytearray(var.get().encode())
    finally:
        log.append(("closed", var.get()))


async def _async_chunks(log):
    try:
        yield "a"
        await anyio.lowlevel.checkpoint()
        yield b"b"
        yield bytearray(var.get().encode())
    finally:
        log.append(("closed", var.get()))


@pytest.mark.parametrize("make", [_sync_chunks, _async_chunks])
def test_iterate_body_from_sync_code_gives_bytes_made_in_the_context(make):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "ctx")
    log = []
    body = bridge.iterate_body(make(log), ctx)
    assert list(body) == [b"a", b"b", b"ctx"]
    body.close()
    body.close()  # once
    assert log == [("closed", "ctx")]


@pytest.mark.anyio
@pytest.mark.parametrize("make", [_sync_chunks, _async_chunks])
async def test_iterate_body_from_async_code_gives_bytes_made_in_the_context(make):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "ctx")
    log = []
    body = bridge.iterate_body(make(log), ctx, workers.Workers(object(), 1))
    assert [chunk async for chunk in body] == [b"a", b"b", b"ctx"]
    await body.aclose()
    await body.aclose()  # once
    assert log == [("closed", "ctx")]
    assert var.get() == "unset"


@pytest.mark.anyio
@pytest.mark.parametrize("make", [_sync_chunks, _async_chunks])
async def test_iterate_body_closed_early_runs_the_generators_finally(make):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "ctx")
    log = []
    body = bridge.iterate_body(make(log), ctx, workers.Workers(object(), 1))
    assert await body.__anext__() == b"a"
    await body.aclose()
    assert log == [("closed", "ctx")]


# -- once per process -------------------------------------------------------------------------


def test_once_per_process_runs_once_and_again_after_a_failure():
    once = bridge.OncePerProcess()
    runs = []

    def fails():
        runs.append("fails")
        raise RuntimeError("not yet")

    with pytest.raises(RuntimeError):
        once.run(fails)
    assert not once.done
    once.run(lambda: runs.append("runs"))
    once.run(lambda: runs.append("again"))
    assert once.done
    assert runs == ["fails", "runs"]


def test_once_per_process_runs_once_for_concurrent_first_callers():
    once = bridge.OncePerProcess()
    runs = []
    barrier = threading.Barrier(8)

    def slow():
        runs.append(threading.get_ident())
        threading.Event().wait(0.05)

    def caller():
        barrier.wait()
        once.run(slow)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(runs) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_once_per_process_runs_again_in_a_forked_child():
    once = bridge.OncePerProcess()
    once.run(lambda: None)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, and leave without running the parent's cleanup
        try:
            ran = []
            before = once.done
            once.run(lambda: ran.append(True))
            os.write(write, f"{before} {ran == [True]} {once.done}".encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        report = os.read(read, 100).decode()
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert report == "False True True"
    assert once.done


_AT_EXIT_SCRIPT = """
import multiprocessing, sys
from ctxflask.bridge import process

log = sys.argv[1]

def note(who):
    with open(log, "a") as f:
        f.write(who + "\\n")

def child():
    process.at_exit(lambda: note("child"))

process.at_exit(lambda: note("parent"))
worker = multiprocessing.get_context("fork").Process(target=child)
worker.start()
worker.join()
note("parent done")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_at_exit_runs_once_at_exit_and_at_the_end_of_a_forked_worker(tmp_path):
    # A forked multiprocessing worker (granian's) leaves by os._exit: atexit never runs
    # there, multiprocessing's finalizers do. It inherits the parent's registration,
    # which must not run in it.
    import subprocess

    log = tmp_path / "log"
    subprocess.run(
        [sys.executable, "-c", _AT_EXIT_SCRIPT, str(log)], check=True, timeout=30
    )
    assert log.read_text().splitlines() == ["child", "parent done", "parent"]


@pytest.mark.parametrize("ctx", [None, "copy"], ids=["current-context", "own-context"])
def test_steps_after_a_callable_that_ran_steps_of_its_own_keep_their_driver(ctx):
    # A sync callable is called by the steps themselves; it runs other steps (a nested
    # request, say), whose driver says how they run. The outer steps' next callables,
    # async ones included, still run as their own driver says.
    async def later():
        await asyncio.sleep(0)
        return var.get()

    def nested():
        inner: list[str] = []
        steps = _steps([later], inner)
        asyncio.run(bridge.run_steps_async(steps, contextvars.copy_context()))
        return f"inner {inner[0]}"

    def set_outer():
        var.set("outer")

    log: list[str | None] = []
    steps = _steps([set_outer, nested, later, var.get], log)
    context = None if ctx is None else contextvars.copy_context()
    assert bridge.run_steps(steps, context) == "done"
    assert log == [None, "inner outer", "outer", "outer"]


@pytest.mark.anyio
async def test_a_worker_threads_steps_after_a_nested_driver_go_back_to_the_loop():
    loop_thread = threading.get_ident()

    async def on_loop():
        return threading.get_ident() == loop_thread

    def nested():  # in a worker thread: a sync driver of its own there
        return bridge.run_steps(_steps([lambda: "x"], []), contextvars.copy_context())

    @bridge.nonblocking
    def cheap():  # called on the loop, not by the worker thread's steps
        return threading.get_ident() == loop_thread

    log: list[object] = []
    in_worker = lambda: threading.get_ident() != loop_thread  # noqa: E731
    # The first callable of a trip to the thread is the driver's; the steps call the next.
    steps = _steps([in_worker, nested, cheap, on_loop], log)
    assert await bridge.run_steps_async(steps, contextvars.copy_context()) == "done"
    assert log == [True, "done", True, True]
