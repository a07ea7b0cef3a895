# Third-party libraries, all from Debian packages (scripts/install-deps).
# With ERRAND_STATIC the archives (.a) are preferred so that only glibc stays dynamic.
if(ERRAND_STATIC)
  set(OPENSSL_USE_STATIC_LIBS TRUE)
  set(ZLIB_USE_STATIC_LIBS ON)
  set(_errand_lib_names_suffix .a)
else()
  set(_errand_lib_names_suffix "")
endif()

find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(tl-expected REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 QUIET)

function(errand_find_lib var)
  set(names)
  foreach(n IN LISTS ARGN)
    if(ERRAND_STATIC)
      list(APPEND names lib${n}.a)
    endif()
    list(APPEND names ${n})
  endforeach()
  find_library(${var} NAMES ${names} REQUIRED)
  set(${var} ${${var}} PARENT_SCOPE)
endfunction()

errand_find_lib(BROTLIDEC_LIB brotlidec)
errand_find_lib(BROTLICOMMON_LIB brotlicommon)
errand_find_lib(BROTLIENC_LIB brotlienc)
errand_find_lib(ZSTD_LIB zstd)
errand_find_lib(URING_LIB uring)

add_library(errand_compression INTERFACE)
# brotlienc is used by the target server only; static archives bring in only what is used.
target_link_libraries(errand_compression INTERFACE ZLIB::ZLIB ${BROTLIDEC_LIB} ${BROTLIENC_LIB} ${BROTLICOMMON_LIB} ${ZSTD_LIB})
