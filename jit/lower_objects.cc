// Object fast paths of the baseline translation (FunctionCompiler, function_compiler.h):
// BINARY_SUBSCR and STORE_SUBSCR of lists and tuples, FOR_ITER over ranges and lists, the
// attribute caches probed inline, and PRECALL/CALL of methods and list.append. Each function's
// comment says what it assumes and why it is exact; every miss takes the generic helper.
#include "jit/function_compiler.h"

namespace fatjit::jit {

// BINARY_SUBSCR of an exact list or tuple by a compact int in [0, len), as ceval's
// BINARY_SUBSCR_LIST_INT / _TUPLE_INT do (negative indexes, slices, other types: the helper).
// The container loses a reference without reaching zero (a last reference takes the slow path,
// where releasing the container may run finalizers and is followed by the usual checks); the
// index is an int: nothing here runs code or raises.
bool FunctionCompiler::LowerSubscript(int index) {
  const Instruction& inst = decoded_.instructions()[index];
  const int d = depth_[index];
  bool lists = true;
  bool tuples = true;
  switch (LiveOpcode(inst)) {
    case BINARY_SUBSCR_LIST_INT: tuples = false; break;
    case BINARY_SUBSCR_TUPLE_INT: lists = false; break;
    case BINARY_SUBSCR_DICT: case BINARY_SUBSCR_GETITEM: lists = tuples = false; break;
    default: break;
  }
  const OpEntry& generic = OpTable()[BINARY_SUBSCR];
  if (!NumericFastPathsEnabled() || (!lists && !tuples)) {
    OwnBorrowedOperands(index);
    return LowerHelper(index, generic, nullptr);
  }
  Block slow = e_.NewBlock("subscript_generic");
  Block int_index = e_.NewBlock("int_index");
  Block compact_index = e_.NewBlock("compact_index");
  Value container = OperandAt(index, d - 2);
  Value sub = OperandAt(index, d - 1);
  e_.Branch(IsType(TypeOf(sub), &PyLong_Type), int_index, slow);
  Enter(int_index);
  e_.Branch(e_.Compare(Cmp::kUlt, e_.Add(Field(sub, kObSize), e_.Imm(1)), e_.Imm(3)),
            compact_index, slow);
  Enter(compact_index);
  Value i = CompactIntValue(sub);
  Value container_type = TypeOf(container);
  // In range (a negative index is a huge unsigned one) and not the container's last reference
  // (a borrowed one is the local's).
  auto usable = [&]() {
    Value in_range = e_.Compare(Cmp::kUlt, i, Field(container, kObSize));
    if (Borrowed(container)) return in_range;
    return e_.And(in_range, e_.Compare(Cmp::kSgt, Refcount(container), e_.Imm(1)));
  };
  auto finish = [&](Value item) {
    Incref(item);
    Decref(sub);  // an int: its deallocation runs nothing
    if (!Borrowed(container)) DecrefNoDealloc(container);
    StoreSlot(d - 2, item);
    e_.Jump(NextBlock(index));
  };
  Block tuple_test = tuples ? e_.NewBlock("tuple_test") : slow;
  if (lists) {
    Block list = e_.NewBlock("list_index");
    Block list_item = e_.NewBlock("list_item");
    e_.Branch(IsType(container_type, &PyList_Type), list, tuple_test);
    Enter(list);
    e_.Branch(usable(), list_item, slow);
    Enter(list_item);
    Value items = e_.Load(container, offsetof(PyListObject, ob_item));
    finish(e_.Load(e_.Add(items, e_.Mul(i, e_.Imm(sizeof(PyObject*)))), 0));
  }
  if (tuples) {
    if (!lists) e_.Jump(tuple_test);
    Enter(tuple_test);
    Block tuple = e_.NewBlock("tuple_index");
    Block tuple_item = e_.NewBlock("tuple_item");
    e_.Branch(IsType(container_type, &PyTuple_Type), tuple, slow);
    Enter(tuple);
    e_.Branch(usable(), tuple_item, slow);
    Enter(tuple_item);
    Value address = e_.Add(container, e_.Mul(i, e_.Imm(sizeof(PyObject*))));
    finish(e_.Load(address, offsetof(PyTupleObject, ob_item)));
  }
  Enter(slow);
  OwnBorrowedOperands(index);
  return LowerHelper(index, generic, nullptr);
}

// STORE_SUBSCR of an exact list by a compact int in [0, len), as ceval's STORE_SUBSCR_LIST_INT
// does, when nothing it releases can run code: the list is not the stack's last reference and
// the item it replaces either keeps other references or is an exact int or float (whose
// deallocation runs nothing). Everything else (dicts, slices, negative indexes, a replaced item
// whose release may run __del__) takes the helper, followed by the usual checks.
bool FunctionCompiler::LowerStoreSubscript(int index) {
  const Instruction& inst = decoded_.instructions()[index];
  const int d = depth_[index];
  const OpEntry& generic = OpTable()[STORE_SUBSCR];
  if (!NumericFastPathsEnabled() || LiveOpcode(inst) == STORE_SUBSCR_DICT) {
    return LowerHelper(index, generic, nullptr);
  }
  Block slow = e_.NewBlock("store_subscript_generic");
  Block int_index = e_.NewBlock("store_int_index");
  Block list = e_.NewBlock("store_list");
  Block store = e_.NewBlock("store_list_item");
  Value sub = LoadSlot(d - 1);
  Value container = LoadSlot(d - 2);
  Value value = LoadSlot(d - 3);
  Value size = Field(sub, kObSize);
  e_.Branch(e_.And(IsType(TypeOf(sub), &PyLong_Type), e_.Compare(Cmp::kUlt, size, e_.Imm(2))),
            int_index, slow);
  Enter(int_index);
  Value i = e_.Select(e_.Compare(Cmp::kEq, size, e_.Imm(0)), e_.Imm(0),
                      Field(sub, kIntDigit0, Width::k32));
  e_.Branch(e_.And(IsType(TypeOf(container), &PyList_Type),
                   e_.And(e_.Compare(Cmp::kUlt, i, Field(container, kObSize)),
                          e_.Compare(Cmp::kSgt, Refcount(container), e_.Imm(1)))),
            list, slow);
  Enter(list);
  Value slot = e_.Add(e_.Load(container, offsetof(PyListObject, ob_item)),
                      e_.Mul(i, e_.Imm(sizeof(PyObject*))));
  Value old = e_.Load(slot, 0);
  Value old_type = TypeOf(old);
  Value quiet = e_.Or(e_.Compare(Cmp::kSgt, Refcount(old), e_.Imm(1)),
                      e_.Or(IsType(old_type, &PyFloat_Type), IsType(old_type, &PyLong_Type)));
  e_.Branch(quiet, store, slow);
  Enter(store);
  e_.Store(slot, 0, value);  // the stack's reference to the value moves into the list
  Decref(old);
  Decref(sub);
  DecrefNoDealloc(container);
  e_.Jump(NextBlock(index));
  Enter(slow);
  return LowerHelper(index, generic, nullptr);
}

// FOR_ITER over an exact range or list iterator, inline: what rangeiter_next and listiter_next
// do while values remain. A range iterator's exhaustion pops and releases it here (its
// deallocation runs nothing); a list iterator's, which releases the list, takes the helper, as
// does every other iterator. Layouts are the private structs of rangeobject.c and listobject.c,
// checked against the types' basic sizes before use.
namespace {
struct RangeIterLayout {
  PyObject_HEAD
  long index;
  long start;
  long step;
  long len;
};
struct ListIterLayout {
  PyObject_HEAD
  Py_ssize_t index;
  PyListObject* seq;
};
}  // namespace

bool FunctionCompiler::LowerForIter(int index) {
  const Instruction& inst = decoded_.instructions()[index];
  const int d = depth_[index];
  const OpEntry& generic = OpTable()[FOR_ITER];
  const bool ranges = PyRangeIter_Type.tp_basicsize == sizeof(RangeIterLayout);
  const bool lists = PyListIter_Type.tp_basicsize == sizeof(ListIterLayout);
  if (!NumericFastPathsEnabled() || (!ranges && !lists)) {
    return LowerHelper(index, generic, nullptr);
  }
  Block slow = e_.NewBlock("for_iter_generic");
  Value iter = LoadSlot(d - 1);
  Value type = TypeOf(iter);
  Block list_test = lists ? e_.NewBlock("list_iter_test") : slow;
  if (ranges) {
    Block range = e_.NewBlock("range_iter");
    Block next_value = e_.NewBlock("range_next");
    Block exhausted = e_.NewBlock("range_exhausted");
    e_.Branch(IsType(type, &PyRangeIter_Type), range, list_test);
    Enter(range);
    Value i = Field(iter, offsetof(RangeIterLayout, index));
    e_.Branch(e_.Compare(Cmp::kSlt, i, Field(iter, offsetof(RangeIterLayout, len))),
              next_value, exhausted);
    Enter(next_value);
    // start + index * step with C's unsigned wrap-around, as rangeiter_next computes it.
    Value value = e_.Add(Field(iter, offsetof(RangeIterLayout, start)),
                         e_.Mul(i, Field(iter, offsetof(RangeIterLayout, step))));
    SetField(iter, offsetof(RangeIterLayout, index), e_.Add(i, e_.Imm(1)));
    // A small int comes from the cache. Another goes into the object of the local the next
    // STORE_FAST replaces when only that local refers to it (TryIntoLocal: the interpreter would
    // free it right after the store), else into a new int.
    Block large = e_.NewBlock("range_large");
    Block box = e_.NewBlock("range_box");
    StoreSlot(d, CachedSmallInt(value, large));
    e_.Jump(NextBlock(index));
    Enter(large);
    InPlaceWrite writer = IntWriter(value);
    TryIntoLocal(
        index, &PyLong_Type, [&](Value) { return e_.Imm(1); }, writer.can_hold, writer.write,
        [] {}, box);
    Enter(box);
    StoreSlot(d, BoxInt(value, inst, d));
    e_.Jump(NextBlock(index));
    Enter(exhausted);
    Decref(iter);
    JumpTo(inst.jump_target);
  }
  if (lists) {
    if (!ranges) e_.Jump(list_test);
    Enter(list_test);
    Block list = e_.NewBlock("list_iter");
    Block has_items = e_.NewBlock("list_iter_seq");
    Block next_item = e_.NewBlock("list_next");
    e_.Branch(IsType(type, &PyListIter_Type), list, slow);
    Enter(list);
    Value seq = Field(iter, offsetof(ListIterLayout, seq));
    e_.Branch(e_.Compare(Cmp::kNe, seq, e_.Imm(0)), has_items, slow);
    Enter(has_items);
    Value i = Field(iter, offsetof(ListIterLayout, index));
    e_.Branch(e_.Compare(Cmp::kSlt, i, Field(seq, kObSize)), next_item, slow);
    Enter(next_item);
    Value item = e_.Load(e_.Add(e_.Load(seq, offsetof(PyListObject, ob_item)),
                                e_.Mul(i, e_.Imm(sizeof(PyObject*)))),
                         0);
    Incref(item);
    SetField(iter, offsetof(ListIterLayout, index), e_.Add(i, e_.Imm(1)));
    StoreSlot(d, item);
    e_.Jump(NextBlock(index));
  }
  Enter(slow);
  return LowerHelper(index, generic, nullptr);
}

// LOAD_ATTR and STORE_ATTR: the first entry of the site's cache probed inline for the two kinds
// that are plain memory accesses in the instance (attr_cache.h says why a hit is sound): an
// instance value of a managed dict that is not materialized, and a __slots__ member. The owner
// must not be the stack's last reference (releasing it could run __del__). Each leaves the
// current block in the miss path, which calls the helper (every entry probed, a refill, or the
// generic lookup).
void FunctionCompiler::ProbeAttrCacheInline(AttrCache& cache, Value owner, Block miss,
                                            const std::function<void(Value)>& at_address) {
  const AttrCacheEntry& entry = cache.entries[0];
  Value at = e_.Ptr(&entry);
  Block probe = e_.NewBlock("attr_cache_probe");
  Block instance_value = e_.NewBlock("attr_instance_value");
  Block values_present = e_.NewBlock("attr_values");
  Block slot_test = e_.NewBlock("attr_slot_test");
  Block slot = e_.NewBlock("attr_slot");
  Value version = e_.Load(at, offsetof(AttrCacheEntry, type_version), Width::k32);
  Value type_version = e_.Load(TypeOf(owner), offsetof(PyTypeObject, tp_version_tag), Width::k32);
  e_.Branch(e_.And(e_.And(e_.Compare(Cmp::kEq, version, type_version),
                          e_.Compare(Cmp::kNe, version, e_.Imm(0))),
                   e_.Compare(Cmp::kSgt, Refcount(owner), e_.Imm(1))),
            probe, miss);
  Enter(probe);
  Value kind = e_.Load(at, offsetof(AttrCacheEntry, kind), Width::k8);
  Value index = e_.Load(at, offsetof(AttrCacheEntry, index));
  e_.Branch(e_.Compare(Cmp::kEq, kind, e_.Imm(static_cast<int>(AttrCacheKind::kInstanceValue))),
            instance_value, slot_test);
  Enter(instance_value);
  // _PyObject_ValuesPointer: the values pointer sits four words before a managed-dict object.
  Value values = e_.Load(owner, -4 * static_cast<int64_t>(sizeof(PyObject*)));
  e_.Branch(e_.Compare(Cmp::kNe, values, e_.Imm(0)), values_present, miss);
  Enter(values_present);
  at_address(e_.Add(values, e_.Mul(index, e_.Imm(sizeof(PyObject*)))));
  Enter(slot_test);
  e_.Branch(e_.Compare(Cmp::kEq, kind, e_.Imm(static_cast<int>(AttrCacheKind::kSlot))), slot,
            miss);
  Enter(slot);
  at_address(e_.Add(owner, index));  // kSlot's index is the member's byte offset
}

void FunctionCompiler::CountAttrCacheHit() {
  Value hits = e_.Ptr(&GlobalJitCounters().attr_cache_hits);
  e_.Store(hits, 0, e_.Add(e_.Load(hits, 0), e_.Imm(1)));
}

void FunctionCompiler::InlineLoadAttr(int index, AttrCache& cache) {
  const int d = depth_[index];
  Value owner = OperandAt(index, d - 1);
  Block miss = e_.NewBlock("attr_cache_miss");
  ProbeAttrCacheInline(cache, owner, miss, [&](Value address) {
    Value value = e_.Load(address, 0);
    Block found = e_.NewBlock("attr_cache_hit");
    e_.Branch(e_.Compare(Cmp::kNe, value, e_.Imm(0)), found, miss);
    Enter(found);
    CountAttrCacheHit();
    Incref(value);
    if (!Borrowed(owner)) DecrefNoDealloc(owner);
    StoreSlot(d - 1, value);
    e_.Jump(NextBlock(index));
  });
  Enter(miss);
}

// LOAD_METHOD [owner] -> [method, owner]: the first entry, when it holds a method found on the
// owner's type that the instance cannot shadow (ProbeMethod in attr_cache.cc, inline).
void FunctionCompiler::InlineLoadMethod(int index, AttrCache& cache) {
  const int d = depth_[index];
  const AttrCacheEntry& entry = cache.entries[0];
  Value at = e_.Ptr(&entry);
  Value owner = LoadSlot(d - 1);
  Block miss = e_.NewBlock("method_cache_miss");
  Block method = e_.NewBlock("method_cache_entry");
  Block with_keys = e_.NewBlock("method_shared_keys");
  Block hit = e_.NewBlock("method_cache_hit");
  Value type = TypeOf(owner);
  Value version = e_.Load(at, offsetof(AttrCacheEntry, type_version), Width::k32);
  Value kind = e_.Load(at, offsetof(AttrCacheEntry, kind), Width::k8);
  e_.Branch(e_.And(e_.And(e_.Compare(Cmp::kEq, version,
                                     e_.Load(type, offsetof(PyTypeObject, tp_version_tag),
                                             Width::k32)),
                          e_.Compare(Cmp::kNe, version, e_.Imm(0))),
                   e_.Compare(Cmp::kEq, kind,
                              e_.Imm(static_cast<int>(AttrCacheKind::kMethod)))),
            method, miss);
  Enter(method);
  Value keys = e_.Load(at, offsetof(AttrCacheEntry, shared_keys));
  e_.Branch(e_.Compare(Cmp::kEq, keys, e_.Imm(0)), hit, with_keys);
  Enter(with_keys);
  // A managed-dict instance: no materialized dict (at obj[-3]) and the type's shared keys
  // unchanged in size (they only grow), so the instance still lacks the name.
  Value dict = e_.Load(owner, -3 * static_cast<int64_t>(sizeof(PyObject*)));
  Value same_keys =
      e_.Compare(Cmp::kEq, e_.Load(type, offsetof(PyHeapTypeObject, ht_cached_keys)), keys);
  Value entries = e_.Load(keys, offsetof(PyDictKeysObject, dk_nentries));
  e_.Branch(e_.And(e_.And(e_.Compare(Cmp::kEq, dict, e_.Imm(0)), same_keys),
                   e_.Compare(Cmp::kEq, entries,
                              e_.Load(at, offsetof(AttrCacheEntry, shared_keys_entries)))),
            hit, miss);
  Enter(hit);
  CountAttrCacheHit();
  Value function = e_.Load(at, offsetof(AttrCacheEntry, value));
  Incref(function);
  StoreSlot(d - 1, function);
  StoreSlot(d, owner);  // the slot's reference moves up
  e_.Jump(NextBlock(index));
  Enter(miss);
}

// PRECALL [method-or-NULL, callable-or-self, args...]: the helper only unpacks an exact bound
// method in the callable slot when the first slot is NULL. After a LOAD_METHOD that found a
// method (the first slot is set), or for any other callable, it does nothing: those cases skip
// it here.
void FunctionCompiler::InlinePrecallOfMethod(int index) {
  if (!NumericFastPathsEnabled()) return;
  const Instruction& inst = decoded_.instructions()[index];
  const int d = depth_[index];  // PRECALL's depth: the arguments are still on the stack
  Block not_method = e_.NewBlock("precall_no_self");
  Block unpack = e_.NewBlock("precall_unpack");
  e_.Branch(e_.Compare(Cmp::kNe, LoadSlot(d - inst.oparg - 2), e_.Imm(0)), NextBlock(index),
            not_method);
  // [NULL, callable, args...]: the helper only unpacks an exact bound method; anything else
  // (a function, a type, a builtin) it leaves as it is.
  Enter(not_method);
  e_.Branch(IsType(TypeOf(LoadSlot(d - inst.oparg - 1)), &PyMethod_Type), unpack,
            NextBlock(index));
  Enter(unpack);
}

void FunctionCompiler::CountBuiltinCall() {
  Value calls = e_.Ptr(&GlobalJitCounters().builtin_calls);
  e_.Store(calls, 0, e_.Add(e_.Load(calls, 0), e_.Imm(1)));
}

// CALL 1 [list.append, list, item] -> [None]: what ceval's PRECALL_NO_KW_LIST_APPEND does
// (the callable is the interpreter's own list.append, interp->callable_cache.list_append, and
// self a list), for an exact list with room for the item (_PyList_AppendTakeRef without the
// resize) that is not the stack's last reference. It runs no code and cannot fail, so nothing
// else of a call is needed (ceval's specialized form skips the eval-breaker check too). The
// item's reference moves into the list. Every other case (a resize, a subclass, another
// callable) takes the helper: CallBuiltinDirectly or the generic call.
void FunctionCompiler::InlineListAppend(int index) {
  PyObject* append = PyInterpreterState_Get()->callable_cache.list_append;
  if (!NumericFastPathsEnabled() || append == nullptr) return;
  const int d = depth_[index] + 1;  // CALL's run-time depth (static depths charge PRECALL)
  Block room_test = e_.NewBlock("list_append_test");
  Block append_item = e_.NewBlock("list_append");
  Block miss = e_.NewBlock("list_append_generic");
  Value method = LoadSlot(d - 3);
  Value list = LoadSlot(d - 2);  // never NULL: self, or the callable when method is NULL
  Value item = LoadSlot(d - 1);
  e_.Branch(e_.And(e_.Compare(Cmp::kEq, method, e_.Ptr(append)),
                   IsType(TypeOf(list), &PyList_Type)),
            room_test, miss);
  Enter(room_test);
  Value size = Field(list, kObSize);
  e_.Branch(e_.And(e_.Compare(Cmp::kSlt, size, Field(list, offsetof(PyListObject, allocated))),
                   e_.Compare(Cmp::kSgt, Refcount(list), e_.Imm(1))),
            append_item, miss);
  Enter(append_item);
  Value items = Field(list, offsetof(PyListObject, ob_item));
  e_.Store(e_.Add(items, e_.Mul(size, e_.Imm(sizeof(PyObject*)))), 0, item);
  SetField(list, kObSize, e_.Add(size, e_.Imm(1)));
  DecrefNoDealloc(list);
  DecrefNoDealloc(method);  // list's type dict holds the descriptor
  Value none = e_.Ptr(Py_None);
  Incref(none);
  StoreSlot(d - 3, none);
  CountBuiltinCall();
  e_.Jump(NextBlock(index));
  Enter(miss);
}

// UNPACK_SEQUENCE count [seq] -> [item count-1, ..., item 0]: what UNPACK_SEQUENCE_TUPLE and
// _LIST do, for an exact tuple or list of exactly `count` items (iterating them runs no code, so
// copying the items is the generic result). The sequence's release runs no code either: its
// items, each with a new reference on the stack, outlive it, and neither type has a finalizer.
// Anything else, an error included, takes the helper.
void FunctionCompiler::InlineUnpackSequence(int index) {
  const int count = decoded_.instructions()[index].oparg;
  if (!NumericFastPathsEnabled() || count < 1 || count > 16) return;
  const int d = depth_[index];
  Value seq = LoadSlot(d - 1);
  Value type = TypeOf(seq);
  Value right_size = e_.Compare(Cmp::kEq, Field(seq, kObSize), e_.Imm(count));
  Block tuple = e_.NewBlock("unpack_tuple");
  Block list_test = e_.NewBlock("unpack_list_test");
  Block list = e_.NewBlock("unpack_list");
  Block miss = e_.NewBlock("unpack_generic");
  e_.Branch(e_.And(IsType(type, &PyTuple_Type), right_size), tuple, list_test);
  Enter(list_test);
  e_.Branch(e_.And(IsType(type, &PyList_Type), right_size), list, miss);
  auto unpack = [&](Value items) {
    for (int i = 0; i < count; ++i) {
      Value item = e_.Load(items, 8 * i, Width::k64, Mem::kField);
      Incref(item);
      StoreSlot(d + count - 2 - i, item);  // the first item on top
    }
    Decref(seq);
    e_.Jump(NextBlock(index));
  };
  Enter(tuple);
  unpack(e_.Add(seq, e_.Imm(offsetof(PyTupleObject, ob_item))));
  Enter(list);
  unpack(Field(seq, offsetof(PyListObject, ob_item)));
  Enter(miss);
}

// FORMAT_VALUE [value] -> [formatted] with no format spec and no conversion or !s: an exact str
// is its own result (ceval's test; str(s) of an exact str is s), so the instruction does
// nothing. Everything else takes the helper.
void FunctionCompiler::InlineFormatOfStr(int index) {
  const int oparg = decoded_.instructions()[index].oparg;
  const int conversion = oparg & FVC_MASK;
  if (!NumericFastPathsEnabled() || (oparg & FVS_MASK) == FVS_HAVE_SPEC ||
      (conversion != FVC_NONE && conversion != FVC_STR)) {
    return;
  }
  Block miss = e_.NewBlock("format_generic");
  e_.Branch(IsType(TypeOf(LoadSlot(depth_[index] - 1)), &PyUnicode_Type), NextBlock(index), miss);
  Enter(miss);
}

// [value, owner] -> []: only over an existing value whose release runs nothing (other references
// remain, or an exact int or float); a new attribute (insertion order to record) or a value
// with a finalizer takes the helper.
void FunctionCompiler::InlineStoreAttr(int index, AttrCache& cache) {
  const int d = depth_[index];
  Value owner = LoadSlot(d - 1);
  Value value = LoadSlot(d - 2);
  Block miss = e_.NewBlock("attr_cache_miss");
  ProbeAttrCacheInline(cache, owner, miss, [&](Value address) {
    Value old = e_.Load(address, 0);
    Block present = e_.NewBlock("attr_store_present");
    Block store = e_.NewBlock("attr_store_hit");
    e_.Branch(e_.Compare(Cmp::kNe, old, e_.Imm(0)), present, miss);
    Enter(present);
    Value old_type = TypeOf(old);
    e_.Branch(e_.Or(e_.Compare(Cmp::kSgt, Refcount(old), e_.Imm(1)),
                    e_.Or(IsType(old_type, &PyFloat_Type), IsType(old_type, &PyLong_Type))),
              store, miss);
    Enter(store);
    CountAttrCacheHit();
    e_.Store(address, 0, value);  // the stack's reference moves into the instance
    Decref(old);
    DecrefNoDealloc(owner);
    e_.Jump(NextBlock(index));
  });
  Enter(miss);
}

}  // namespace fatjit::jit

namespace fatjit::jit {

// CALL oparg [method-or-NULL, callable-or-self, args...] -> [result], as CallThroughCacheEntry
// makes it for the site cache's first entry (native_call.h says why that call is the one the
// interpreter makes): the same checks, in the same order of effect, emitted here so that a
// monomorphic call to native code costs no dispatch through fatjit_rt_CALL_CACHED. Every check
// reads the cache at run time (it is refilled by the helper's misses), so nothing of the callee
// is assumed when compiling. Miss: nothing touched, the helper runs. Hit: the callee's frame is
// pushed and filled (_PyFrame_InitializeSpecials, the arguments' and callable's references move
// into it, the stack slots are nulled as the helper leaves them), the callee's native code is
// called directly, counted and pinned as RunNative does, and the frame is cleared and popped
// inline (ClearAndPopDirectFrame).
Value FunctionCompiler::InlineDirectCall(int index, DirectCallCache& cache, Block miss) {
  const Instruction& inst = decoded_.instructions()[index];
  const int oparg = inst.oparg;
  const int d = depth_[index] + oparg;  // CALL's run-time depth (static depths charge PRECALL)
  const DirectCallCache::Entry& entry = cache.first;
  auto load = [&](const void* address, Width width = Width::k64) {
    return e_.Load(e_.Ptr(address), 0, width);
  };
  static const Helper kGuards{"fatjit_rt_direct_call_guards",
                              reinterpret_cast<const void*>(&fatjit_rt_direct_call_guards), 3};
  static const Helper kUnpinned{"fatjit_rt_unpinned",
                                reinterpret_cast<const void*>(&fatjit_rt_unpinned), 1, false};
  static const Helper kClearAndPop{
      "fatjit_rt_clear_and_pop_frame",
      reinterpret_cast<const void*>(&fatjit_rt_clear_and_pop_frame), 2, false};

  // [method, self, args] when LOAD_METHOD found a method, else [NULL, callable, args].
  Value method = LoadSlot(d - oparg - 2);
  Value is_meth = e_.Compare(Cmp::kNe, method, e_.Imm(0));
  Value callable = e_.Select(is_meth, method, LoadSlot(d - oparg - 1));
  Value extra = e_.Select(is_meth, e_.Imm(1), e_.Imm(0));
  Value nargs = e_.Add(e_.Imm(oparg), extra);
  Value args = e_.Sub(e_.Add(frame_, e_.Imm(SlotOffset(d - oparg))), e_.Mul(extra, e_.Imm(8)));

  Block function = e_.NewBlock("direct_call_function");
  Block owner_test = e_.NewBlock("direct_call_owner");
  Block owner_ok = e_.NewBlock("direct_call_owner_ok");
  Block guards_test = e_.NewBlock("direct_call_guards");
  Block guards_ok = e_.NewBlock("direct_call_guards_ok");
  Block push = e_.NewBlock("direct_call_push");
  e_.Branch(e_.And(e_.Compare(Cmp::kEq, load(&cache.epoch), load(&internal::g_direct_call_epoch)),
                   IsType(TypeOf(callable), &PyFunction_Type)),
            function, miss);
  Enter(function);
  Value code = e_.Load(callable, offsetof(PyFunctionObject, func_code), Width::k64, Mem::kField);
  Value tracing = e_.LoadVolatile(e_.Load(tstate_, kCframe), kUseTracing, Width::k8);
  Value hook = e_.Load(e_.Load(tstate_, kInterp), offsetof(PyInterpreterState, eval_frame));
  Value same_call = e_.And(
      e_.And(e_.Compare(Cmp::kEq, code, load(&entry.code)),
             e_.Compare(Cmp::kEq, nargs, load(&entry.argcount, Width::k32))),
      e_.And(e_.Compare(Cmp::kEq, tracing, e_.Imm(0)),
             e_.Compare(Cmp::kEq, hook, load(DirectCallHookSlot()))));
  e_.Branch(same_call, owner_test, miss);
  Enter(owner_test);  // a specialization's owner must be this function (its weakref's referent)
  Value owner = load(&entry.target.owner);
  Block owner_alive = e_.NewBlock("direct_call_owner_alive");
  e_.Branch(e_.Compare(Cmp::kEq, owner, e_.Imm(0)), owner_ok, owner_alive);
  Enter(owner_alive);
  e_.Branch(e_.Compare(Cmp::kEq, e_.Load(owner, offsetof(PyWeakReference, wr_object)), callable),
            owner_ok, miss);
  Enter(owner_ok);
  Value guards = load(&entry.target.guards);
  e_.Branch(e_.Compare(Cmp::kEq, guards, e_.Imm(0)), guards_ok, guards_test);
  Enter(guards_test);
  e_.Branch(e_.Compare(Cmp::kNe, e_.Call(kGuards, {guards, args, nargs}), e_.Imm(0)), guards_ok,
            miss);
  Enter(guards_ok);  // room in the data stack's chunk: BumpFramePointer's test
  Value top = e_.Load(tstate_, offsetof(PyThreadState, datastack_top));
  Value limit = e_.Load(tstate_, offsetof(PyThreadState, datastack_limit));
  Value chunk = e_.Load(tstate_, offsetof(PyThreadState, datastack_chunk));
  Value size = e_.Mul(load(&entry.frame_size), e_.Imm(sizeof(PyObject*)));
  e_.Branch(e_.And(e_.And(e_.Compare(Cmp::kNe, top, e_.Imm(0)),
                          e_.Compare(Cmp::kUlt, size, e_.Sub(limit, top))),
                   e_.Compare(Cmp::kNe, top, e_.Add(chunk, e_.Imm(offsetof(_PyStackChunk, data))))),
            push, miss);

  Enter(push);
  e_.Store(tstate_, offsetof(PyThreadState, datastack_top), e_.Add(top, size));
  Value callee = top;
  Value nlocalsplus = load(&entry.nlocalsplus, Width::k32);
  auto set = [&](int64_t offset, Value v, Width width = Width::k64) {
    e_.Store(callee, offset, v, width);
  };
  Incref(code);
  set(offsetof(_PyInterpreterFrame, f_func), callable);  // the stack's reference moves
  set(offsetof(_PyInterpreterFrame, f_code), code);
  set(offsetof(_PyInterpreterFrame, f_builtins),
      e_.Load(callable, offsetof(PyFunctionObject, func_builtins), Width::k64, Mem::kField));
  set(offsetof(_PyInterpreterFrame, f_globals),
      e_.Load(callable, offsetof(PyFunctionObject, func_globals), Width::k64, Mem::kField));
  set(offsetof(_PyInterpreterFrame, f_locals), e_.Imm(0));
  set(offsetof(_PyInterpreterFrame, stacktop), nlocalsplus, Width::k32);
  set(offsetof(_PyInterpreterFrame, frame_obj), e_.Imm(0));
  set(kPrevInstr,
      e_.Add(code, e_.Imm(offsetof(PyCodeObject, co_code_adaptive) - sizeof(_Py_CODEUNIT))));
  set(offsetof(_PyInterpreterFrame, is_entry), e_.Imm(0), Width::k8);
  set(offsetof(_PyInterpreterFrame, owner), e_.Imm(FRAME_OWNED_BY_THREAD), Width::k8);
  // The arguments move into the first locals: self first (written unconditionally: without a
  // method, that slot is the callable, and the arguments or the nulling below overwrite it;
  // with no locals at all it lies in the frame's value stack, above stacktop, never read).
  set(kLocalsplus, LoadSlot(d - oparg - 1));
  Value first_arg = e_.Add(callee, e_.Add(e_.Imm(kLocalsplus), e_.Mul(extra, e_.Imm(8))));
  for (int k = 0; k < oparg; ++k) e_.Store(first_arg, 8 * k, LoadSlot(d - oparg + k));
  // The other locals start unbound: locals[nargs .. nlocalsplus) = NULL.
  CountedLoop(nargs, nlocalsplus, [&](Value i) {
    e_.Store(e_.Add(callee, e_.Mul(i, e_.Imm(8))), kLocalsplus, e_.Imm(0));
  });
  for (int j = d - oparg - 2; j < d; ++j) StoreSlot(j, e_.Imm(0));
  // The run, counted as the hook counts it (the resolver's counts, the code's calls, the JIT's
  // native and direct calls), the callee's code pinned around it (RunNative's Enter, Leave).
  // Everything about the callee is read before the call: the callee may refill this cache.
  auto increment = [&](Value address) {
    e_.Store(address, 0, e_.Add(e_.Load(address, 0), e_.Imm(1)));
  };
  for (uint64_t* const& count : entry.target.counts) increment(load(&count));
  increment(load(&entry.code_calls));
  increment(e_.Ptr(&GlobalJitCounters().direct_calls));  // native_calls counts them too
  Value native = load(&entry.target.native);
  Value pin = load(&entry.pin);
  Value code_entry = load(&entry.code_entry);
  increment(pin);
  Value result = e_.CallAddress(code_entry, {tstate_, callee, e_.Imm(0)});
  StoreSlot(d - oparg - 2, result);
  Value pins_left = e_.Sub(e_.Load(pin, 0), e_.Imm(1));
  e_.Store(pin, 0, pins_left);
  Block unpinned = e_.NewBlock("direct_call_unpinned");
  Block pop = e_.NewBlock("direct_call_pop");
  e_.Branch(e_.Compare(Cmp::kEq, pins_left, e_.Imm(0)), unpinned, pop);
  Enter(unpinned);
  e_.Call(kUnpinned, {native});
  e_.Jump(pop);
  Enter(pop);
  ClearAndPopDirectFrame(callee, kClearAndPop);
  return e_.Select(e_.Compare(Cmp::kEq, result, e_.Imm(0)), e_.Imm(-1), e_.Imm(0));
}

// for (i = begin; i < end; ++i) body(i), where `body` may branch as long as it ends in one
// block; the code after it continues in a new block.
void FunctionCompiler::CountedLoop(Value begin, Value end, const std::function<void(Value)>& body) {
  Value i_slot = e_.StackSlot();
  e_.Store(i_slot, 0, begin);
  Block test = e_.NewBlock("loop_test");
  Block iteration = e_.NewBlock("loop_body");
  Block done = e_.NewBlock("loop_done");
  e_.Jump(test);
  Enter(test);
  Value i = e_.Load(i_slot, 0);
  e_.Branch(e_.Compare(Cmp::kSlt, i, end), iteration, done);
  Enter(iteration);
  body(i);
  e_.Store(i_slot, 0, e_.Add(e_.Load(i_slot, 0), e_.Imm(1)));
  e_.Jump(test);
  Enter(done);
}

// ceval.c's _PyEvalFrameClearAndPop for the frame InlineDirectCall pushed, inline: a frame
// object made during the call (sys._getframe, a traceback) needs take_ownership, so that case
// calls the helper; otherwise the frame's references are released as _PyFrame_Clear releases
// them (localsplus up to stacktop, f_locals, f_func, f_code), with recursion_remaining lowered
// around it as there, and the frame is popped by putting datastack_top back: the push found
// room in the current chunk and the frame does not start it (BumpFramePointer's test), and the
// callee popped whatever it pushed, so that chunk is current again.
void FunctionCompiler::ClearAndPopDirectFrame(Value callee, const Helper& clear_and_pop) {
  Block with_frame_object = e_.NewBlock("pop_frame_object");
  Block clear = e_.NewBlock("pop_clear");
  Block popped = e_.NewBlock("popped");
  e_.BranchUnlikely(
      e_.Compare(Cmp::kNe, e_.Load(callee, offsetof(_PyInterpreterFrame, frame_obj)), e_.Imm(0)),
      with_frame_object, clear);
  Enter(with_frame_object);
  e_.Call(clear_and_pop, {tstate_, callee});
  e_.Jump(popped);

  Enter(clear);
  constexpr int64_t kRecursion = offsetof(PyThreadState, recursion_remaining);
  e_.Store(tstate_, kRecursion, e_.Sub(e_.Load(tstate_, kRecursion, Width::k32), e_.Imm(1)),
           Width::k32);
  Value stacktop = e_.Load(callee, offsetof(_PyInterpreterFrame, stacktop), Width::k32);
  CountedLoop(e_.Imm(0), stacktop, [&](Value i) {
    XDecref(e_.Load(e_.Add(callee, e_.Mul(i, e_.Imm(8))), kLocalsplus));
  });
  XDecref(e_.Load(callee, offsetof(_PyInterpreterFrame, f_locals)));
  Decref(e_.Load(callee, offsetof(_PyInterpreterFrame, f_func)));
  Decref(e_.Load(callee, offsetof(_PyInterpreterFrame, f_code)));
  e_.Store(tstate_, kRecursion, e_.Add(e_.Load(tstate_, kRecursion, Width::k32), e_.Imm(1)),
           Width::k32);
  e_.Store(tstate_, offsetof(PyThreadState, datastack_top), callee);
  e_.Jump(popped);
  Enter(popped);
}

}  // namespace fatjit::jit
