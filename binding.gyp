{
  "targets": [
    {
      "target_name": "berth_front",
      "sources": ["src/wire/native/front.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "libraries": ["-lpthread"]
    }
  ]
}
