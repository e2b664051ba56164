/* The defaults of automatic mode's thresholds, as plain C macros: ext/tuning.h (C++, where each
 * value's measurement is written down) and the start-up counter ext/boot.c (C, so that it loads
 * without libstdc++) take them from here, so the two never disagree. */
#ifndef FATJIT_EXT_TUNING_DEFAULTS_H_
#define FATJIT_EXT_TUNING_DEFAULTS_H_

#define FATJIT_DEFAULT_SPECIALIZE_THRESHOLD 10000
#define FATJIT_DEFAULT_JIT_THRESHOLD 1000
#define FATJIT_LOOP_TIME_PER_CALL_NS 10000

#endif /* FATJIT_EXT_TUNING_DEFAULTS_H_ */
