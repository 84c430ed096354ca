# DTX_SANITIZE=address,undefined | thread : build everything with those
# sanitizers (CI runs both: scripts/test.sh). Sanitizer builds abort at the
# first report so a test cannot pass past one.
set(DTX_SANITIZE "" CACHE STRING "Sanitizers to build with: address,undefined | thread (empty: none)")
if(DTX_SANITIZE)
  string(REPLACE "," ";" _dtx_sanitizers "${DTX_SANITIZE}")
  foreach(s IN LISTS _dtx_sanitizers)
    if(NOT s MATCHES "^(address|undefined|thread|leak)$")
      message(FATAL_ERROR "DTX_SANITIZE: unknown sanitizer '${s}' (address, undefined, thread, leak)")
    endif()
  endforeach()
  if("thread" IN_LIST _dtx_sanitizers AND "address" IN_LIST _dtx_sanitizers)
    message(FATAL_ERROR "DTX_SANITIZE: thread cannot be combined with address")
  endif()
  add_compile_options(-fsanitize=${DTX_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${DTX_SANITIZE})
endif()
