/* What the start-up counter _fatjit_boot (ext/boot.c) tells fatjit, through the capsule
 * _fatjit_boot._counts: C and C++ read this header alike. */
#ifndef FATJIT_EXT_BOOT_H_
#define FATJIT_EXT_BOOT_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FATJIT_BOOT_COUNTS_CAPSULE "_fatjit_boot._counts"

typedef struct _object PyObject;

typedef struct FatjitBootCounts {
  /* Calls of `code` (a code object), and its loop time in calls, counted before the hand-over. */
  int64_t (*calls_counted)(PyObject *code);
} FatjitBootCounts;

#ifdef __cplusplus
}
#endif

#endif /* FATJIT_EXT_BOOT_H_ */
