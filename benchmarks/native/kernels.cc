// The suite's numeric kernels in C++, the "native" mode of benchmarks/run.py: the physical limit
// each Python mode is compared against.
//
// Each kernel is a line-by-line translation of kernel()/fib() in benchmarks/suite/<name>.py:
// the same algorithm, the same data layout where C++ has one (std::vector for lists), and the
// same floating-point operations in the same order, so results agree with CPython's (the runner
// checks them with the Python program's check()). Integers are int64_t: the Python kernels keep
// their values inside int64 for that reason. Built with -O2 and no -march, no -ffast-math: what a
// portable release build of a C++ program would be.
//
// Protocol (the same as benchmarks/worker.py's): `native_kernels BENCH N WARMUPS RUNS` calls the
// kernel WARMUPS + RUNS times and prints one line
//     FATJIT-BENCH {"first": s, "times": [s, ...], "result": ..., "peak_rss_kb": k}
// Exit status 1 on a bad argument or if two calls disagree, 3 if BENCH has no native kernel.
//
// To add a kernel: translate the Python kernel, return its result as a Result (ints and doubles
// in the order the Python code returns them), and add a line to kKernels.

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <variant>
#include <vector>

namespace {

// A kernel's return value: a scalar or a tuple of scalars, printed as JSON.
using Scalar = std::variant<int64_t, double>;
using Result = std::vector<Scalar>;  // one element: a scalar; several: a JSON array

int64_t IntLoop(int64_t n) {
  int64_t total = 0;
  int64_t x = 12345;
  for (int64_t i = 0; i < n; ++i) {
    x = (x * 1103515245 + 12345) & 2147483647;
    if (x & 1) {
      total += x % 1000;
    } else {
      total -= i % 13;
    }
  }
  return total;
}

double FloatLoop(int64_t n) {
  double h = 1.0 / static_cast<double>(n);
  double total = 4.0 + 2.0;
  for (int64_t i = 1; i < n; ++i) {
    double x = static_cast<double>(i) * h;
    double weight = i % 2 == 1 ? 4.0 : 2.0;
    total += weight * 4.0 / (1.0 + x * x);
  }
  return total * h / 3.0;
}

struct Planet {
  double mass, radius, phase;
};
constexpr Planet kPlanets[] = {{1.0, 10.0, 0.0}, {0.5, 16.0, 1.3}, {2.0, 25.0, 2.9},
                               {0.1, 40.0, 4.4}};
constexpr double kStarMass = 1000.0;
constexpr double kNbodyDt = 0.01;

using Vec = std::vector<double>;

double NbodyEnergy(const Vec& m, const Vec& x, const Vec& y, const Vec& z, const Vec& vx,
                   const Vec& vy, const Vec& vz) {
  size_t nb = m.size();
  double e = 0.0;
  for (size_t i = 0; i < nb; ++i) {
    e += 0.5 * m[i] * (vx[i] * vx[i] + vy[i] * vy[i] + vz[i] * vz[i]);
    for (size_t j = i + 1; j < nb; ++j) {
      double dx = x[i] - x[j], dy = y[i] - y[j], dz = z[i] - z[j];
      e -= m[i] * m[j] / std::sqrt(dx * dx + dy * dy + dz * dz);
    }
  }
  return e;
}

Result Nbody(int64_t steps) {
  size_t nb = std::size(kPlanets) + 1;
  Vec m(nb, 0.0), x(nb, 0.0), y(nb, 0.0), z(nb, 0.0), vx(nb, 0.0), vy(nb, 0.0), vz(nb, 0.0);
  m[0] = kStarMass;
  for (size_t k = 0; k + 1 < nb; ++k) {
    const Planet& p = kPlanets[k];
    double speed = std::sqrt(kStarMass / p.radius);
    m[k + 1] = p.mass;
    x[k + 1] = p.radius * std::cos(p.phase);
    y[k + 1] = p.radius * std::sin(p.phase);
    z[k + 1] = 0.01 * p.radius;
    vx[k + 1] = -speed * std::sin(p.phase);
    vy[k + 1] = speed * std::cos(p.phase);
  }
  for (size_t k = 1; k < nb; ++k) {
    vx[0] -= m[k] * vx[k] / kStarMass;
    vy[0] -= m[k] * vy[k] / kStarMass;
  }
  double e0 = NbodyEnergy(m, x, y, z, vx, vy, vz);
  for (int64_t step = 0; step < steps; ++step) {
    for (size_t i = 0; i < nb; ++i) {
      for (size_t j = i + 1; j < nb; ++j) {
        double dx = x[i] - x[j], dy = y[i] - y[j], dz = z[i] - z[j];
        double d2 = dx * dx + dy * dy + dz * dz;
        double mag = kNbodyDt / (d2 * std::sqrt(d2));
        double mi = m[i] * mag, mj = m[j] * mag;
        vx[i] -= dx * mj;
        vy[i] -= dy * mj;
        vz[i] -= dz * mj;
        vx[j] += dx * mi;
        vy[j] += dy * mi;
        vz[j] += dz * mi;
      }
    }
    for (size_t i = 0; i < nb; ++i) {
      x[i] += kNbodyDt * vx[i];
      y[i] += kNbodyDt * vy[i];
      z[i] += kNbodyDt * vz[i];
    }
  }
  return {e0, NbodyEnergy(m, x, y, z, vx, vy, vz)};
}

double SpectralA(int64_t i, int64_t j) {
  return 1.0 / static_cast<double>((i + j) * (i + j + 1) / 2 + i + 1);
}

Vec SpectralTimes(const Vec& v, int64_t n, bool transposed) {
  Vec out(n, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (int64_t j = 0; j < n; ++j) s += (transposed ? SpectralA(j, i) : SpectralA(i, j)) * v[j];
    out[i] = s;
  }
  return out;
}

double SpectralNorm(int64_t n) {
  Vec u(n, 1.0), v(n, 0.0);
  for (int k = 0; k < 10; ++k) {
    v = SpectralTimes(SpectralTimes(u, n, false), n, true);
    u = SpectralTimes(SpectralTimes(v, n, false), n, true);
  }
  double vbv = 0.0, vv = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    vbv += u[i] * v[i];
    vv += v[i] * v[i];
  }
  return std::sqrt(vbv / vv);
}

Result Mandelbrot(int64_t n) {
  constexpr int64_t kMaxIter = 60;
  int64_t inside = 0, iterations = 0;
  for (int64_t row = 0; row < n; ++row) {
    double ci = -1.25 + 2.5 * static_cast<double>(row) / static_cast<double>(n);
    for (int64_t col = 0; col < n; ++col) {
      double cr = -2.0 + 2.5 * static_cast<double>(col) / static_cast<double>(n);
      double zr = 0.0, zi = 0.0;
      int64_t k = 0;
      while (k < kMaxIter) {
        double zr2 = zr * zr, zi2 = zi * zi;
        if (zr2 + zi2 > 4.0) break;
        zi = 2.0 * zr * zi + ci;
        zr = zr2 - zi2 + cr;
        ++k;
      }
      iterations += k;
      if (k == kMaxIter) ++inside;
    }
  }
  return {inside, iterations};
}

// Python's % for a non-negative divisor: the result has the divisor's sign.
int64_t PyMod(int64_t a, int64_t b) {
  int64_t r = a % b;
  return r < 0 ? r + b : r;
}

double Matmul(int64_t n) {
  std::vector<Vec> a(n, Vec(n)), b(n, Vec(n)), c(n, Vec(n, 0.0));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      a[i][j] = static_cast<double>((i * 3 + j * 5) % 11 - 5);
      b[i][j] = static_cast<double>((i * 7 + j * 2) % 13 - 6);
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const Vec& ai = a[i];
    Vec& ci = c[i];
    for (int64_t k = 0; k < n; ++k) {
      double aik = ai[k];
      const Vec& bk = b[k];
      for (int64_t j = 0; j < n; ++j) ci[j] += aik * bk[j];
    }
  }
  double checksum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      checksum += c[i][j] * static_cast<double>(PyMod(i + 2 * j, 17) - 8);
    }
  }
  return checksum;
}

Result Sieve(int64_t n) {
  std::vector<bool> flags(n, true);
  flags[0] = false;
  flags[1] = false;
  for (int64_t i = 2; i * i < n; ++i) {
    if (flags[i]) {
      for (int64_t j = i * i; j < n; j += i) flags[j] = false;
    }
  }
  int64_t count = 0, total = 0;
  for (int64_t k = 0; k < n; ++k) {
    if (flags[k]) {
      ++count;
      total += k;
    }
  }
  return {count, total};
}

int64_t Fib(int64_t n) { return n < 2 ? n : Fib(n - 1) + Fib(n - 2); }

struct Kernel {
  const char* name;
  Result (*run)(int64_t n);
};

const Kernel kKernels[] = {
    {"int_loop", [](int64_t n) -> Result { return {IntLoop(n)}; }},
    {"float_loop", [](int64_t n) -> Result { return {FloatLoop(n)}; }},
    {"nbody", Nbody},
    {"spectral_norm", [](int64_t n) -> Result { return {SpectralNorm(n)}; }},
    {"mandelbrot", Mandelbrot},
    {"matmul", [](int64_t n) -> Result { return {Matmul(n)}; }},
    {"sieve", Sieve},
    {"fib", [](int64_t n) -> Result { return {Fib(n)}; }},
};

// Peak RSS in KiB from VmHWM in /proc/self/status (see peak_rss_kb in worker.py), -1 if unknown.
long PeakRssKb() {
  std::FILE* status = std::fopen("/proc/self/status", "r");
  if (status == nullptr) return -1;
  char line[256];
  long kb = -1;
  while (std::fgets(line, sizeof line, status) != nullptr) {
    if (std::sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
  }
  std::fclose(status);
  return kb;
}

std::string ScalarJson(const Scalar& s) {
  char buf[64];
  if (const int64_t* i = std::get_if<int64_t>(&s)) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(*i));
  } else {
    std::snprintf(buf, sizeof buf, "%.17g", std::get<double>(s));
  }
  return buf;
}

std::string ResultJson(const Result& r) {
  if (r.size() == 1) return ScalarJson(r[0]);
  std::string out = "[";
  for (size_t k = 0; k < r.size(); ++k) out += (k ? ", " : "") + ScalarJson(r[k]);
  return out + "]";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s BENCH N WARMUPS RUNS\n", argv[0]);
    return 1;
  }
  const Kernel* kernel = nullptr;
  for (const Kernel& k : kKernels) {
    if (std::strcmp(k.name, argv[1]) == 0) kernel = &k;
  }
  if (kernel == nullptr) {
    std::fprintf(stderr, "native: no native kernel for %s\n", argv[1]);
    return 3;
  }
  int64_t n = std::atoll(argv[2]);
  int warmups = std::atoi(argv[3]), runs = std::atoi(argv[4]);
  int calls = warmups + runs > 0 ? warmups + runs : 1;

  std::vector<double> times;
  std::string first_result;
  for (int call = 0; call < calls; ++call) {
    int64_t arg = n;
    asm volatile("" : "+r"(arg));  // n is opaque: no call is folded into another
    auto start = std::chrono::steady_clock::now();
    Result result = kernel->run(arg);
    auto stop = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double>(stop - start).count());
    std::string json = ResultJson(result);
    if (call == 0) {
      first_result = json;
    } else if (json != first_result) {
      std::fprintf(stderr, "native %s(%lld): results differ: %s, %s\n", argv[1],
                   static_cast<long long>(n), first_result.c_str(), json.c_str());
      return 1;
    }
  }
  std::string timed = "[";
  int begin = warmups < calls ? warmups : calls - 1;
  for (int k = begin; k < calls; ++k) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.9g", k > begin ? ", " : "", times[k]);
    timed += buf;
  }
  timed += "]";
  long rss = PeakRssKb();
  std::printf("FATJIT-BENCH {\"first\": %.9g, \"times\": %s, \"result\": %s, \"peak_rss_kb\": %s}\n",
              times[0], timed.c_str(), first_result.c_str(),
              rss < 0 ? "null" : std::to_string(rss).c_str());
  return 0;
}
