{
  "targets": [
    {
      "target_name": "gta_torch",
      "sources": ["torch_addon.cc", "dist.cc", "decode_step.cc", "train_pass.cc", "grad_stats.cc", "adamw.cc", "log_probs.cc", "threads.cc", "precision.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node find_libtorch.mjs includes)"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "<!@(node find_libtorch.mjs defines)", "<!@(node find_libtorch.mjs distDefines)"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-fno-math-errno", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "libraries": ["<!@(node find_libtorch.mjs ldflags)", "-L<!@(node find_libtorch.mjs libdirs)", "<!@(node find_libtorch.mjs libs)"]
    }
  ]
}
