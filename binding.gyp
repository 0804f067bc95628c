{
  "targets": [
    {
      "target_name": "naplus_uffd",
      "sources": [
        "src/uffd/native/addon.cc",
        "src/uffd/native/uffd.cc",
        "src/uffd/native/memory.cc",
        "src/uffd/native/socket.cc",
        "src/uffd/native/poll.cc",
        "src/uffd/native/process.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"]
    }
  ]
}
