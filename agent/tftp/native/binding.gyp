{
  "targets": [
    {
      "target_name": "underlay_tftp",
      "sources": ["data_path.c", "file_send.c", "dhcp_io.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "libraries": ["-lpthread"]
    }
  ]
}
