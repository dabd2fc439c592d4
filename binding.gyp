{
  "targets": [
    {
      "target_name": "tsrt",
      "sources": [
        "native/addon/addon.cc",
        "native/addon/process.cc",
        "native/addon/fds.cc",
        "native/addon/host.cc",
        "native/addon/seccomp.cc",
        "native/addon/netdev.c",
        "native/addon/spawn.c",
        "native/executor/decode.c",
        "native/executor/joined.c"
      ],
      "libraries": ["-lseccomp"],
      "ldflags": ["-static-libstdc++", "-static-libgcc", "<!@(make -s -f native/hardening.mk ldflags)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["<!@(make -s -f native/hardening.mk cflags)", "-Wno-unused-parameter", "-fno-strict-aliasing", "-Wa,-I<(module_root_dir)/native/init", "-Wa,-I<(module_root_dir)/native/executor", "<!@(make -s -f native/hardening.mk sanitize-addon)"],
      "cflags_cc": ["-std=c++17", "-Wa,-I<(module_root_dir)/native/init", "-Wa,-I<(module_root_dir)/native/executor"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
