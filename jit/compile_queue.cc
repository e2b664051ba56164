// The background compiler thread: see compile_queue.h for what it assumes and why it is sound.
#include "jit/compile_queue.h"

#include <new>
#include <system_error>

#ifdef __GLIBC__
#include <malloc.h>  // malloc_trim
#endif

namespace fatjit::jit {

CompileQueue& CompileQueue::Get() {
  static CompileQueue* queue = new CompileQueue();
  return *queue;
}

namespace {

// LLVM's compiles free most of what they allocate, but glibc keeps freed heap memory for reuse, in
// this thread's arena for the background compiles: without giving it back, a six-line function
// compiled and tiered up left ~2.2 MB more in the process's RSS, against ~50 KB once trimmed
// (test_jit_background.py's memory test). Trimmed when the queue is empty after a job and
// kJobsPerTrim jobs ran since the last trim, without the GIL, before the worker counts as idle (so
// wait_for_compiles and a fork wait for it). The trim walks every arena's free chunks with that
// arena locked, so a malloc in the main arena meanwhile waits: ~1 ms on a small heap, 50-170 ms on
// a 1 GB fragmented one (measured); hence once per burst of compiles, not after each.
void ReturnFreedMemory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace

bool CompileQueue::Submit(std::unique_ptr<LoweredFunction>& lowered, Finish finish,
                          bool optional) {
  Job evicted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return false;
    if (queued_.size() >= kMaxQueued) {
      // A job the caller can do without (or compile itself) is refused; an optional one takes the
      // place of the job that waited longest (the front: the back goes first).
      if (!optional) return false;
      evicted = std::move(queued_.front());
      queued_.pop_front();
    }
    if (worker_ == nullptr) {
      try {
        worker_ = new std::thread([this] { WorkerLoop(); });
      } catch (const std::system_error&) {
        if (evicted.lowered) queued_.push_front(std::move(evicted));  // put back: nothing changes
        return false;  // no thread to be had: the caller compiles in its own
      }
    }
    queued_.push_back(Job{std::move(lowered), std::move(finish), optional});
    ++in_flight_;
    wake_.notify_one();
  }
  if (evicted.lowered) {  // under the GIL, outside the lock: the callback may touch Python
    --in_flight_;
    evicted.finish(std::move(evicted.lowered), true);
  }
  return true;
}

void CompileQueue::WorkerLoop() {
  // The worker's thread state lives as long as the thread (made at its first finish): taking the
  // GIL through PyGILState_Ensure for each job would make and free a thread state each time, and
  // CPython 3.11's tracemalloc crashes when another thread stops it while a thread without a
  // thread state allocates one (its raw-allocator hook waits for the GIL, then reads the traceback
  // buffer stop() freed; fixed in 3.12.9 and 3.13.2, gh-128679). Once is a much smaller window.
  PyGILState_STATE gil_state = PyGILState_UNLOCKED;
  PyThreadState* thread_state = nullptr;
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopped_ || (!paused_ && !queued_.empty()); });
      if (stopped_) break;  // Shutdown drops what still waits
      job = std::move(queued_.back());  // the newest (compile_queue.h: why)
      queued_.pop_back();
      busy_ = true;
    }
    GenerateCode(*job.lowered);
    if (thread_state == nullptr) {
      gil_state = PyGILState_Ensure();
    } else {
      PyEval_RestoreThread(thread_state);
    }
    --in_flight_;
    job.finish(std::move(job.lowered), false);
    job = Job{};  // the callback may hold references: released under the GIL
    thread_state = PyEval_SaveThread();
    bool drained;
    {
      std::lock_guard<std::mutex> lock(mu_);
      drained = queued_.empty();
    }
    if (++jobs_since_trim_ >= kJobsPerTrim && drained) {
      jobs_since_trim_ = 0;
      ReturnFreedMemory();  // still busy: Drain and BeforeFork wait for it
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ = false;
    }
    idle_.notify_all();
  }
  if (thread_state != nullptr) {  // Shutdown lets the GIL go while it joins this thread
    PyEval_RestoreThread(thread_state);
    PyGILState_Release(gil_state);
  }
}

void CompileQueue::DropQueued() {
  std::deque<Job> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dropped.swap(queued_);
  }
  for (Job& job : dropped) {
    --in_flight_;
    job.finish(std::move(job.lowered), true);
  }
}

void CompileQueue::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  wake_.notify_all();
  DropQueued();
  if (worker_ != nullptr) {
    // The worker may be waiting for the GIL to finish its last job.
    Py_BEGIN_ALLOW_THREADS
    worker_->join();
    Py_END_ALLOW_THREADS
    delete worker_;
    worker_ = nullptr;
  }
}

void CompileQueue::Drain() {
  Py_BEGIN_ALLOW_THREADS
  {  // mu_ is let go before the GIL is taken back: the worker takes them the other way round
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock,
               [this] { return stopped_ || worker_ == nullptr || (queued_.empty() && !busy_); });
  }
  Py_END_ALLOW_THREADS
}

void CompileQueue::BeforeFork() {
  Py_BEGIN_ALLOW_THREADS
  {  // as in Drain: mu_ is let go before the GIL is taken back
    std::unique_lock<std::mutex> lock(mu_);
    paused_ = true;
    idle_.wait(lock, [this] { return !busy_; });
  }
  Py_END_ALLOW_THREADS
}

void CompileQueue::AfterForkInParent() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = false;
  }
  wake_.notify_all();
}

void CompileQueue::AfterForkInChild() {
  // Only the forking thread exists in the child: the worker, and whatever it held, did not come
  // along. Make the synchronization objects anew rather than trust their state.
  new (&mu_) std::mutex();
  new (&wake_) std::condition_variable();
  new (&idle_) std::condition_variable();
  worker_ = nullptr;  // leaked: its std::thread must not be joined or destroyed here
  busy_ = false;
  paused_ = false;
  DropQueued();
}

}  // namespace fatjit::jit
