// curl_multi_loop — the libcurl peer of errand_client_loop: the same command line, the same
// work and the same JSON line, with "tool":"libcurl".
//
//   curl_multi_loop --url http://127.0.0.1:8080/small --concurrency 50 --duration 5s
//                   [--new-connection] [--expect-bytes N]
//
// One thread, one multi handle, N easy handles kept in flight: when a transfer ends it is
// checked (200, expected size) and its easy handle is added again at once, so connections are
// reused through the multi's connection cache. The write callback counts bytes and keeps
// nothing. --new-connection sets CURLOPT_FRESH_CONNECT and CURLOPT_FORBID_REUSE and sends
// "Connection: close", like errand_client_loop. Written in the C subset libcurl's own
// examples use (compiled as C++ only because the project builds C++).
#include <sys/resource.h>
#include <time.h>

#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>

namespace {

struct Options {
  const char* url = nullptr;
  int concurrency = 50;
  double duration = 5.0;  // seconds
  bool new_connection = false;
  bool keep_body = false;  // append each body to a new std::string, as errand's send() does
  bool check_size = false;
  unsigned long long expect_bytes = 0;
};

struct Slot {
  CURL* easy = nullptr;
  unsigned long long bytes = 0;
  std::string* body = nullptr;  // with --keep-body
};

[[noreturn]] void usage(const char* why) {
  fprintf(stderr,
          "curl_multi_loop: %s\n"
          "usage: curl_multi_loop --url URL [--concurrency 50] [--duration 5s] [--new-connection]\n"
          "                       [--expect-bytes N]\n",
          why);
  exit(2);
}

// "5s", "500ms", "1.5s", "2m", or a plain number of seconds; <= 0 on a bad value.
double parse_duration(const char* text) {
  char* end = nullptr;
  double value = strtod(text, &end);
  if (end == text) return -1;
  if (strcmp(end, "ms") == 0) return value / 1000.0;
  if (strcmp(end, "s") == 0 || *end == '\0') return value;
  if (strcmp(end, "m") == 0) return value * 60.0;
  return -1;
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    bool has_value = i + 1 < argc;
    if (strcmp(arg, "--url") == 0 && has_value) {
      o.url = argv[++i];
    } else if (strcmp(arg, "--concurrency") == 0 && has_value) {
      o.concurrency = atoi(argv[++i]);
      if (o.concurrency <= 0) usage("--concurrency must be a positive number");
    } else if (strcmp(arg, "--duration") == 0 && has_value) {
      o.duration = parse_duration(argv[++i]);
      if (!(o.duration > 0)) usage("--duration takes a time such as 5s or 500ms");
    } else if (strcmp(arg, "--expect-bytes") == 0 && has_value) {
      char* end = nullptr;
      o.expect_bytes = strtoull(argv[++i], &end, 10);
      if (*end != '\0') usage("--expect-bytes takes a number of bytes");
      o.check_size = true;
    } else if (strcmp(arg, "--new-connection") == 0) {
      o.new_connection = true;
    } else if (strcmp(arg, "--keep-body") == 0) {
      o.keep_body = true;
    } else {
      usage("unknown argument or missing value");
    }
  }
  if (!o.url) usage("--url is required");
  return o;
}

double now_seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double cpu_seconds(const rusage& u) {
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

size_t count_bytes(char*, size_t size, size_t n, void* user) {
  static_cast<Slot*>(user)->bytes += size * n;
  return size * n;
}

size_t keep_bytes(char* data, size_t size, size_t n, void* user) {
  auto* slot = static_cast<Slot*>(user);
  slot->body->append(data, size * n);
  slot->bytes += size * n;
  return size * n;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "curl_multi_loop: curl_global_init failed\n");
    return 1;
  }

  CURLM* multi = curl_multi_init();
  curl_slist* headers = nullptr;
  if (o.new_connection) headers = curl_slist_append(headers, "Connection: close");
  Slot* slots = static_cast<Slot*>(calloc(static_cast<size_t>(o.concurrency), sizeof(Slot)));
  for (int i = 0; i < o.concurrency; ++i) {
    CURL* easy = curl_easy_init();
    slots[i].easy = easy;
    curl_easy_setopt(easy, CURLOPT_URL, o.url);
    if (o.keep_body) slots[i].body = new std::string();
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, o.keep_body ? keep_bytes : count_bytes);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &slots[i]);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, &slots[i]);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROXY, "");  // never an http_proxy from the environment
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "curl_multi_loop");
    if (o.new_connection) {
      curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
      curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
      curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    }
  }

  unsigned long long requests = 0, errors = 0, connections = 0;
  bool described = false;
  auto error = [&](const char* what, long detail) {
    ++errors;
    if (described) return;
    described = true;
    fprintf(stderr, "curl_multi_loop: first error: %s (%ld)\n", what, detail);
  };

  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  double start = now_seconds();
  double end = start + o.duration;
  for (int i = 0; i < o.concurrency; ++i) curl_multi_add_handle(multi, slots[i].easy);
  int active = o.concurrency;
  while (active > 0) {
    int running = 0;
    CURLMcode mc = curl_multi_perform(multi, &running);
    if (mc != CURLM_OK) {
      fprintf(stderr, "curl_multi_loop: curl_multi_perform: %s\n", curl_multi_strerror(mc));
      return 1;
    }
    int left = 0;
    bool readded = false;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      CURLcode result = msg->data.result;
      Slot* slot = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, reinterpret_cast<char**>(&slot));
      long status = 0, connects = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
      connections += static_cast<unsigned long long>(connects);
      if (result != CURLE_OK) error(curl_easy_strerror(result), result);
      else if (status != 200) error("status", status);
      else if (o.check_size && slot->bytes != o.expect_bytes) error("body size", static_cast<long>(slot->bytes));
      else ++requests;
      curl_multi_remove_handle(multi, easy);
      slot->bytes = 0;
      if (slot->body) *slot->body = std::string();  // the caller owned it; the next body is new
      if (now_seconds() < end) {
        curl_multi_add_handle(multi, easy);
        readded = true;
      } else {
        --active;
      }
    }
    if (active == 0) break;
    // A handle added again starts on the next curl_multi_perform: don't wait for I/O first.
    if (!readded) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  double finished = now_seconds();
  getrusage(RUSAGE_SELF, &after);

  double seconds = finished - start;
  double cpu = cpu_seconds(after) - cpu_seconds(before);
  printf(
      "{\"tool\":\"%s\",\"requests\":%llu,\"errors\":%llu,\"seconds\":%.3f,\"rps\":%.1f,"
      "\"cpu_us_per_req\":%.2f,\"max_rss_kib\":%ld,\"connections\":%llu}\n",
      o.keep_body ? "libcurl-keep" : "libcurl", requests, errors, seconds, seconds > 0 ? static_cast<double>(requests) / seconds : 0.0,
      requests ? cpu * 1e6 / static_cast<double>(requests) : 0.0, after.ru_maxrss, connections);
  fflush(stdout);

  for (int i = 0; i < o.concurrency; ++i) {
    curl_easy_cleanup(slots[i].easy);
    delete slots[i].body;
  }
  free(slots);
  curl_slist_free_all(headers);
  curl_multi_cleanup(multi);
  curl_global_cleanup();
  return requests ? 0 : 1;
}
