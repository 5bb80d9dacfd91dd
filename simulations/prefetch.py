"""A cache hint for compiled passes: ``prefetch(array, (i, j, ...))`` asks the CPU to start
loading the cache line of ``array[i, j, ...]`` now, so that a later access finds it there.

It changes no value. The engine's passes read one row of a large state array (a room's
members, a session's bridge) per event, each row a cache miss; issued a few events ahead,
those misses overlap instead of each stalling the loop in turn. Measured on captured ticks of
a 4,096-replica run: the members read of a join's gather went from ~50 to ~22 ns.
The index is not checked against the array's bounds, but a hint for an address outside it
cannot fault: it is never an access (LLVM's ``llvm.prefetch``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from llvmlite import ir  # type: ignore[import-untyped]
from numba.core import cgutils as _cgutils
from numba.core import types
from numba.extending import intrinsic

cgutils: Any = _cgutils  # numba's code-generation helpers carry no annotations


@intrinsic
def _prefetch(typingctx: Any, array: Any, index: Any) -> Any:
    """``llvm.prefetch`` (for writing, high locality) of ``array[index]``'s address."""
    if not (isinstance(array, types.Array) and isinstance(index, types.BaseTuple)
            and len(index) == array.ndim
            and all(isinstance(t, types.Integer) for t in cast(Any, index))):
        return None
    sig = types.void(array, index)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
        array_type, index_type = signature.args
        ary = context.make_array(array_type)(context, builder, args[0])
        parts = cgutils.unpack_tuple(builder, args[1], len(index_type))
        idx = [context.cast(builder, v, t, types.intp)
               for v, t in zip(parts, index_type, strict=True)]
        ptr = cgutils.get_item_pointer(context, builder, array_type, ary, idx)
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]),
            "llvm.prefetch.p0i8")
        # (address, rw = 1: for writing, locality = 3: keep in all levels, 1: data cache)
        builder.call(fn, [builder.bitcast(ptr, byte_ptr), i32(1), i32(3), i32(1)])
    return sig, codegen


# The intrinsic's Python signature is numba's (typing context first); in compiled code it is
# called as prefetch(array, index).
prefetch = cast(Callable[[Any, tuple[Any, ...]], None], _prefetch)
