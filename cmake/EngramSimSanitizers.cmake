# Sanitizer builds (scripts/sanitize.sh, docs/sanitizers.md).
#
#   -DENGRAMSIM_SANITIZE=address,undefined   AddressSanitizer + LeakSanitizer + UBSan
#   -DENGRAMSIM_SANITIZE=thread              ThreadSanitizer
#   empty or OFF (the default)               no sanitizer
#
# Every target of the project (libraries, engramsim, tests, benchmarks) is instrumented and
# linked with the runtime. UBSan does not recover: its first finding aborts the process, so a
# test with undefined behaviour fails instead of printing a line nobody reads. -O1 -g with frame
# pointers keeps the reports' stacks complete at a tolerable speed.
set(ENGRAMSIM_SANITIZE "" CACHE STRING
    "Sanitizers to build with: empty/OFF, address,undefined or thread")
set_property(CACHE ENGRAMSIM_SANITIZE PROPERTY STRINGS "" OFF "address,undefined" thread)

if(ENGRAMSIM_SANITIZE AND NOT ENGRAMSIM_SANITIZE STREQUAL "OFF")
  string(REPLACE "," ";" _engramsim_san_list "${ENGRAMSIM_SANITIZE}")
  foreach(_san IN LISTS _engramsim_san_list)
    if(NOT _san MATCHES "^(address|undefined|thread)$")
      message(FATAL_ERROR "ENGRAMSIM_SANITIZE: unknown sanitizer '${_san}' "
                          "(use address,undefined or thread)")
    endif()
  endforeach()
  if("thread" IN_LIST _engramsim_san_list AND "address" IN_LIST _engramsim_san_list)
    message(FATAL_ERROR "ENGRAMSIM_SANITIZE: thread and address cannot be combined")
  endif()
  set(_engramsim_san_flags -fsanitize=${ENGRAMSIM_SANITIZE} -fno-omit-frame-pointer -O1 -g)
  if("undefined" IN_LIST _engramsim_san_list)
    list(APPEND _engramsim_san_flags -fno-sanitize-recover=all)
  endif()
  # CXX only: CUDA sources are not instrumented (sanitize.sh builds without CUDA anyway).
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${_engramsim_san_flags}>")
  add_link_options(-fsanitize=${ENGRAMSIM_SANITIZE})
  message(STATUS "EngramSim: sanitizers ${ENGRAMSIM_SANITIZE} (-O1 -g, frame pointers)")
endif()
