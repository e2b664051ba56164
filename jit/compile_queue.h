// CompileQueue: one background thread that runs the LLVM part of compiles (GenerateCode) without
// the GIL, so that automatic mode never stops the program for codegen.
//
// Assumes: the caller lowered the function under the GIL (LowerFunction), so a job's IR is
// complete and owned by the job; the backend compiles different functions from any thread.
// Produces: for each job, a call of its `finish` callback WITH the GIL held (the worker keeps one
// thread state for its life and takes the GIL with it), given the generated function, or given
// `dropped` = true when the job will never run (shutdown, fork). The callback runs on the worker
// thread, between two bytecodes of whatever Python thread held the GIL before: it must run no
// Python code that the program could observe (installing machine code on a specialization and
// counting is fine).
// Sound because codegen reads nothing but the job's IR, and everything that touches Python
// objects (making the job, finish, destroying a job) happens under the GIL.
//
// Order: the newest waiting job first. The function that got hot last is the one the program
// runs now; those queued before it got hot in a phase that may be over (a program's start-up
// queues seconds of compiles: argparse's gettext and re functions, re._parser._parse alone 13.5
// s at the optimizing tier). So a hot kernel waits for the compile under way at most. Cheapest
// first was tried: the start-up's small functions then went before the kernel (int_loop ran
// interpreted for 5-7 of its 8 calls).
// Bounded: at most kMaxQueued jobs wait. Beyond that Submit refuses a job the caller needs (the
// caller compiles in its own thread instead, at the baseline), and makes room for an `optional`
// one (a tier-up of baseline code) by dropping the job that waited longest, whose finish runs
// with dropped = true (a dropped first compile is attempted again later; a dropped tier-up
// leaves the baseline code running). Refusing tier-ups kept the functions that got hot last,
// the ones the program runs now, on baseline code for good once start-up had filled the queue
// (fib under FATJIT_JIT_THRESHOLD=0: 0.94x of CPython instead of 2x).
// Shutdown at interpreter exit (Python's atexit runs it, before finalization) drops what waits
// and joins the worker. Fork: BeforeFork waits until the worker is
// idle and keeps it so; AfterForkInParent lets it go on; AfterForkInChild starts the child with
// an empty queue and no worker (one starts at the next Submit), dropping what waited: the
// child recompiles on demand.
#ifndef FATJIT_JIT_COMPILE_QUEUE_H_
#define FATJIT_JIT_COMPILE_QUEUE_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "jit/compile_function.h"

namespace fatjit::jit {

class CompileQueue {
 public:
  static constexpr size_t kMaxQueued = 64;
  using Finish = std::function<void(std::unique_ptr<LoweredFunction> lowered, bool dropped)>;

  // The process's queue. Never destroyed (the worker may outlive static destructors).
  static CompileQueue& Get();

  // Needs the GIL. Takes `lowered` and returns true, or leaves it and returns false when
  // kMaxQueued jobs wait and none of them is optional, after Shutdown, or when no thread can be
  // started. A job dropped to make room gets its finish called with dropped = true.
  bool Submit(std::unique_ptr<LoweredFunction>& lowered, Finish finish, bool optional = false);
  // Jobs submitted and not finished yet (queued or being generated). Needs the GIL.
  size_t InFlight() const { return in_flight_; }

  // Need the GIL; release it while they wait for the worker.
  void Shutdown();
  void BeforeFork();
  void AfterForkInParent();
  void AfterForkInChild();
  // Needs the GIL; releases it while it waits until nothing is in flight (tests, benchmarks).
  void Drain();

 private:
  struct Job {
    std::unique_ptr<LoweredFunction> lowered;
    Finish finish;
    bool optional = false;
  };
  CompileQueue() = default;
  void WorkerLoop();
  void DropQueued();  // under the GIL

  std::mutex mu_;
  std::condition_variable wake_;  // the worker: a job, a pause change, or stop
  std::condition_variable idle_;  // BeforeFork and Drain: the worker finished a job
  std::deque<Job> queued_;        // under mu_
  bool busy_ = false;             // under mu_: the worker is generating or finishing a job
  bool paused_ = false;           // under mu_
  static constexpr int kJobsPerTrim = 8;  // compile_queue.cc: ReturnFreedMemory
  int jobs_since_trim_ = 0;       // the worker's own
  bool stopped_ = false;          // under mu_
  size_t in_flight_ = 0;          // under the GIL
  std::thread* worker_ = nullptr;  // leaked in a forked child, where the thread does not exist
};

}  // namespace fatjit::jit

#endif  // FATJIT_JIT_COMPILE_QUEUE_H_
