# cmake -DOUTPUT=<file> -DSOURCES=<a;b;...> -P source_digest.cmake
# Writes the digest of the AST specializer's sources that keys its import cache
# (specializer/ast/import_hook.py, version()): SHA-256 over "name:sha256(content)\n" for each
# file, sorted by name. Computed at build time so that a process reads one small file instead
# of stat'ing every source at its first import.
list(SORT SOURCES)
set(listing "")
foreach(source ${SOURCES})
  get_filename_component(name ${source} NAME)
  file(SHA256 ${source} hash)
  string(APPEND listing "${name}:${hash}\n")
endforeach()
string(SHA256 digest "${listing}")
file(WRITE ${OUTPUT} "${digest}\n")
