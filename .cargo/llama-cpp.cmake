# Included before every project() of llama.cpp's CMake build (see
# config.toml beside this file): its `common` library is never built.
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llama: build common utils library" FORCE)
