// Loads a SavedModel the way TF Serving does and runs its `serving_default` signature.
//
// TF Serving's binary cannot be installed everywhere, but its loader can be exercised:
// TF Serving builds its servables with `tensorflow::LoadSavedModel` and the "serve" tag. This
// program links only TensorFlow's C++ libraries (no Python), so every op in the graph must come
// from core TensorFlow or from an op library named on the command line, exactly as in a TF
// Serving build that links those libraries.
//
// Usage:  load_and_run <export_dir> [<op_library.so> ...]  < texts (one per line)
// Stdout: JSON lines. One object per text mapping each signature output to that row's values,
//         then {"load_seconds": ..., "run_seconds": ...}. On failure a single
//         {"stage": ..., "error": ...} line and exit status 1 (TensorFlow logs go to stderr).

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <unordered_set>
#include <vector>

#include "tensorflow/c/c_api.h"
#include "tensorflow/cc/saved_model/loader.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/public/session_options.h"

namespace {

constexpr char kServeTag[] = "serve";  // tag_constants.h is not shipped in the wheel's headers.
constexpr char kSignature[] = "serving_default";

using Clock = std::chrono::steady_clock;

// Item ids are arbitrary user strings; error messages quote op names and paths.
std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (const unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

int Fail(const std::string& stage, const std::string& error) {
  std::cout << "{\"stage\": " << JsonString(stage) << ", \"error\": " << JsonString(error) << "}"
            << std::endl;
  return 1;
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// One row of a [batch, ...] output as a JSON list (strings for ids, numbers for scores).
bool RowJson(const tensorflow::Tensor& tensor, int64_t row, int64_t batch, std::string* out) {
  const int64_t width = tensor.NumElements() / batch;
  *out = "[";
  for (int64_t i = row * width; i < (row + 1) * width; ++i) {
    if (i > row * width) *out += ", ";
    if (tensor.dtype() == tensorflow::DT_STRING) {
      *out += JsonString(std::string(tensor.flat<tensorflow::tstring>()(i)));
    } else if (tensor.dtype() == tensorflow::DT_FLOAT) {
      char number[32];
      std::snprintf(number, sizeof(number), "%.9g", tensor.flat<float>()(i));
      *out += number;
    } else {
      return false;
    }
  }
  *out += "]";
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " <export_dir> [<op_library.so> ...] < texts\n";
    return 2;
  }
  const std::string export_dir = argv[1];

  // Custom ops must be registered before the graph is imported, as TF Serving links them in.
  // TF_LoadLibrary (what tf.load_op_library calls) turns load and op registration failures
  // into a status, where a bare dlopen would leave them to surface later as unknown ops.
  for (int i = 2; i < argc; ++i) {
    TF_Status* status = TF_NewStatus();
    TF_LoadLibrary(argv[i], status);  // Handle kept, never freed: its kernels must stay loaded.
    const bool ok = TF_GetCode(status) == TF_OK;
    const std::string message = TF_Message(status);
    TF_DeleteStatus(status);
    if (!ok) return Fail("op_library", std::string(argv[i]) + ": " + message);
  }

  std::vector<std::string> texts;
  for (std::string line; std::getline(std::cin, line);) texts.push_back(line);
  if (texts.empty()) return Fail("input", "no texts on stdin");

  const Clock::time_point load_start = Clock::now();
  tensorflow::SavedModelBundle bundle;
  const absl::Status loaded =
      tensorflow::LoadSavedModel(tensorflow::SessionOptions(), tensorflow::RunOptions(),
                                 export_dir, {kServeTag}, &bundle);
  if (!loaded.ok()) return Fail("load", std::string(loaded.message()));
  const double load_seconds = SecondsSince(load_start);

  const auto& signatures = bundle.GetSignatures();
  const auto found = signatures.find(kSignature);
  if (found == signatures.end()) return Fail("signature", "no serving_default signature");
  const tensorflow::SignatureDef& signature = found->second;
  if (signature.inputs().size() != 1 ||
      signature.inputs().begin()->second.dtype() != tensorflow::DT_STRING) {
    return Fail("signature", "serving_default must take exactly one string input");
  }

  const int64_t batch = static_cast<int64_t>(texts.size());
  tensorflow::Tensor input(tensorflow::DT_STRING, tensorflow::TensorShape({batch}));
  for (int64_t i = 0; i < batch; ++i) input.flat<tensorflow::tstring>()(i) = texts[i];

  // protobuf maps iterate in no fixed order; keep keys and tensor names paired.
  std::vector<std::string> keys, tensor_names;
  for (const auto& [key, info] : signature.outputs()) {
    keys.push_back(key);
    tensor_names.push_back(info.name());
  }

  const Clock::time_point run_start = Clock::now();
  std::vector<tensorflow::Tensor> outputs;
  const absl::Status ran = bundle.GetSession()->Run(
      {{signature.inputs().begin()->second.name(), input}}, tensor_names, {}, &outputs);
  if (!ran.ok()) return Fail("run", std::string(ran.message()));
  const double run_seconds = SecondsSince(run_start);

  for (int64_t row = 0; row < batch; ++row) {
    std::string line = "{";
    for (size_t j = 0; j < keys.size(); ++j) {
      if (outputs[j].dims() == 0 || outputs[j].dim_size(0) != batch) {
        return Fail("output", keys[j] + " is not batched like the input");
      }
      std::string values;
      if (!RowJson(outputs[j], row, batch, &values)) {
        return Fail("output", keys[j] + " is neither a string nor a float32 tensor");
      }
      line += (j ? ", " : "") + JsonString(keys[j]) + ": " + values;
    }
    std::cout << line << "}\n";
  }
  std::cout << "{\"load_seconds\": " << load_seconds << ", \"run_seconds\": " << run_seconds
            << "}" << std::endl;
  return 0;
}
