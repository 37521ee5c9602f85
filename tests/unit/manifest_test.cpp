// Manifest parsing: every key, the defaults, relative paths, and errors that point at the line.
#include "methods/manifest.hpp"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace photon::core {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "photon-manifest-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    file_ = dir_ / "photon.toml";
  }
  void TearDown() override { fs::remove_all(dir_); }

  Manifest load(const std::string& text) {
    std::ofstream(file_) << text;
    return load_manifest(file_);
  }

  // The error message for `text`; fails the test when it loads.
  std::string error_of(const std::string& text) {
    try {
      load(text);
    } catch (const ManifestError& error) {
      return error.what();
    }
    ADD_FAILURE() << "loaded without error:\n" << text;
    return {};
  }

  // "FILE:LINE:COL: " as the messages start.
  std::string at(int line, int column) const {
    return file_.string() + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
  }

  fs::path dir_;
  fs::path file_;
};

TEST_F(ManifestTest, ReadsEveryKey) {
  fs::create_directories(dir_ / "bin");
  const Manifest manifest = load(R"toml(
description = "Shell helpers for the team"

[methods.greet]
description = "Say hello"
command = "./greet.sh"
timeout = "30s"
working_dir = "bin"
env = { GREETING = "hello", OTHER = "x y" }
max_concurrent = 2
interactive = true

[[methods.greet.params]]
name = "who"
type = "string"
description = "Who to greet"
required = false

[[methods.greet.params]]
name = "loud"

[methods.argv]
command = ["python3", "-c", "print(1)"]
timeout = 5
working_dir = "/"

[methods.quick]
command = "true"
timeout = "500ms"
)toml");
  EXPECT_EQ(manifest.file, file_);
  EXPECT_EQ(manifest.description, "Shell helpers for the team");
  ASSERT_EQ(manifest.methods.size(), 3u);

  const ExecMethod& greet = manifest.methods[0];
  EXPECT_EQ(greet.info.name, "greet");
  EXPECT_EQ(greet.info.description, "Say hello");
  EXPECT_EQ(greet.argv, (std::vector<std::string>{"/bin/sh", "-c", "./greet.sh"}));
  EXPECT_EQ(greet.timeout, 30s);
  EXPECT_EQ(greet.working_dir, dir_ / "bin");
  EXPECT_EQ(greet.env, (std::vector<std::pair<std::string, std::string>>{{"GREETING", "hello"},
                                                                         {"OTHER", "x y"}}));
  EXPECT_EQ(greet.max_concurrent, 2u);
  EXPECT_TRUE(greet.interactive);
  ASSERT_EQ(greet.info.params.size(), 2u);
  EXPECT_EQ(greet.info.params[0].name, "who");
  EXPECT_EQ(greet.info.params[0].type, "string");
  EXPECT_EQ(greet.info.params[0].description, "Who to greet");
  EXPECT_FALSE(greet.info.params[0].required);
  EXPECT_EQ(greet.info.params[1].name, "loud");
  EXPECT_EQ(greet.info.params[1].type, "any");
  EXPECT_EQ(greet.info.params[1].description, "");
  EXPECT_TRUE(greet.info.params[1].required);

  const ExecMethod& argv = manifest.methods[1];
  EXPECT_EQ(argv.info.name, "argv");
  EXPECT_EQ(argv.argv, (std::vector<std::string>{"python3", "-c", "print(1)"}));
  EXPECT_EQ(argv.timeout, 5s);
  EXPECT_EQ(argv.working_dir, fs::path("/"));

  EXPECT_EQ(manifest.methods[2].timeout, 500ms);
}

TEST_F(ManifestTest, Defaults) {
  const Manifest manifest = load("[methods.a]\ncommand = \"true\"\n");
  EXPECT_EQ(manifest.description, "");
  ASSERT_EQ(manifest.methods.size(), 1u);
  const ExecMethod& method = manifest.methods[0];
  EXPECT_EQ(method.info.description, "");
  EXPECT_TRUE(method.info.params.empty());
  EXPECT_EQ(method.timeout, 60s);
  EXPECT_EQ(method.working_dir, dir_);
  EXPECT_TRUE(method.env.empty());
  EXPECT_EQ(method.max_concurrent, 0u);
  EXPECT_FALSE(method.interactive);
}

TEST_F(ManifestTest, MethodsKeepFileOrder) {
  const Manifest manifest = load(R"(
[methods.zeta]
command = "true"
[methods.alpha]
command = "true"
[methods."m.v2"]
command = "true"
[methods.beta]
command = "true"
)");
  std::vector<std::string> names;
  for (const ExecMethod& method : manifest.methods) names.push_back(method.info.name);
  EXPECT_EQ(names, (std::vector<std::string>{"zeta", "alpha", "m.v2", "beta"}));
}

TEST_F(ManifestTest, RelativePathsCountFromTheManifestDirectory) {
  fs::create_directories(dir_ / "sub" / "deeper");
  // Loaded through a relative path from elsewhere: still relative to the manifest's directory.
  const fs::path old_cwd = fs::current_path();
  fs::current_path(dir_ / "sub");
  std::ofstream(file_) << "[methods.a]\ncommand = \"true\"\nworking_dir = \"sub/deeper/..\"\n";
  const Manifest manifest = load_manifest("../photon.toml");
  fs::current_path(old_cwd);
  EXPECT_EQ(manifest.file, file_);
  EXPECT_EQ(manifest.methods[0].working_dir, dir_ / "sub");
}

TEST_F(ManifestTest, SyntaxErrorNamesTheLine) {
  const std::string error = error_of("description = \"x\"\n[methods.a]\ncommand = \n");
  EXPECT_EQ(error.rfind(at(3, 11), 0), 0u) << error;
}

TEST_F(ManifestTest, UnknownKeysAreErrors) {
  std::string error = error_of("[methods.a]\ncommand = \"true\"\ncomand = \"true\"\n");
  EXPECT_EQ(error.rfind(at(3, 1), 0), 0u) << error;
  EXPECT_NE(error.find("unknown key methods.a.comand"), std::string::npos) << error;

  error = error_of("descripton = \"x\"\n[methods.a]\ncommand = \"true\"\n");
  EXPECT_EQ(error.rfind(at(1, 1), 0), 0u) << error;
  EXPECT_NE(error.find("unknown key descripton"), std::string::npos) << error;

  error = error_of(
      "[methods.a]\ncommand = \"true\"\n[[methods.a.params]]\nname = \"x\"\nrequird = true\n");
  EXPECT_EQ(error.rfind(at(5, 1), 0), 0u) << error;
  EXPECT_NE(error.find("requird"), std::string::npos) << error;
}

TEST_F(ManifestTest, BadTimeouts) {
  std::string error = error_of("[methods.a]\ncommand = \"true\"\ntimeout = \"soon\"\n");
  EXPECT_EQ(error.rfind(at(3, 11), 0), 0u) << error;
  EXPECT_NE(error.find("methods.a.timeout must be a duration"), std::string::npos) << error;
  EXPECT_NE(error.find("\"soon\""), std::string::npos) << error;

  error = error_of("[methods.a]\ncommand = \"true\"\ntimeout = 0\n");
  EXPECT_EQ(error.rfind(at(3, 11), 0), 0u) << error;
  EXPECT_NE(error.find("positive"), std::string::npos) << error;

  error = error_of("[methods.a]\ncommand = \"true\"\ntimeout = 1.5\n");
  EXPECT_NE(error.find("not a floating-point number"), std::string::npos) << error;

  error = error_of("[methods.a]\ncommand = \"true\"\ntimeout = \"-5s\"\n");
  EXPECT_EQ(error.rfind(at(3, 11), 0), 0u) << error;
}

TEST_F(ManifestTest, MissingCommand) {
  const std::string error =
      error_of("[methods.a]\ndescription = \"x\"\n\n[methods.b]\ncommand = \"true\"\n");
  EXPECT_EQ(error.rfind(at(1, 1), 0), 0u) << error;
  EXPECT_NE(error.find("methods.a has no command"), std::string::npos) << error;
}

TEST_F(ManifestTest, BadCommands) {
  std::string error = error_of("[methods.a]\ncommand = 3\n");
  EXPECT_EQ(error.rfind(at(2, 11), 0), 0u) << error;
  EXPECT_NE(error.find("not an integer"), std::string::npos) << error;
  error = error_of("[methods.a]\ncommand = []\n");
  EXPECT_NE(error.find("empty array"), std::string::npos) << error;
  error = error_of("[methods.a]\ncommand = [\"ls\", 3]\n");
  EXPECT_EQ(error.rfind(at(2, 18), 0), 0u) << error;
  error = error_of("[methods.a]\ncommand = \"  \"\n");
  EXPECT_NE(error.find("empty"), std::string::npos) << error;
}

TEST_F(ManifestTest, BadMethodNames) {
  std::string error = error_of("[methods.\"9lives\"]\ncommand = \"true\"\n");
  EXPECT_EQ(error.rfind(at(1, 10), 0), 0u) << error;
  EXPECT_NE(error.find("bad method name \"9lives\""), std::string::npos) << error;
  error = error_of("[methods.\"two words\"]\ncommand = \"true\"\n");
  EXPECT_NE(error.find("bad method name"), std::string::npos) << error;
  error = error_of("[methods." + std::string(65, 'a') + "]\ncommand = \"true\"\n");
  EXPECT_NE(error.find("bad method name"), std::string::npos) << error;
  // 64 characters are fine, and so are '.', '-' and '_'.
  EXPECT_NO_THROW(load("[methods." + std::string(64, 'a') + "]\ncommand = \"true\"\n"));
  EXPECT_NO_THROW(
      load("[methods._a-b]\ncommand = \"true\"\n[methods.\"c.d\"]\ncommand = \"true\"\n"));
}

TEST_F(ManifestTest, WrongTypes) {
  struct Case {
    std::string line;  // the third line of a method table
    std::string expected;
  };
  const Case cases[] = {
      {"interactive = \"yes\"", "methods.a.interactive must be true or false, not a string"},
      {"max_concurrent = -1", "methods.a.max_concurrent must be a whole number >= 0"},
      {"max_concurrent = \"2\"", "methods.a.max_concurrent must be a whole number >= 0"},
      {"description = 5", "methods.a.description must be a string, not an integer"},
      {"description = \"two\\nlines\"", "methods.a.description must be one line"},
      {"env = \"A=1\"", "methods.a.env must be a table"},
      {"env = { A = 1 }", "methods.a.env.A must be a string (quote it), not an integer"},
      {"env = { PHOTON_METHOD = \"x\" }", "is set by the daemon"},
      {"working_dir = 3", "methods.a.working_dir must be a string"},
      {"working_dir = \"missing\"", "is not a directory"},
      {"params = { name = \"x\" }", "methods.a.params must be an array of tables"},
      {"params = [{ type = \"string\" }]", "methods.a.params entry has no name"},
      {"params = [{ name = \"x\", type = \"str\" }]", "methods.a.params.type must be one of"},
      {"params = [{ name = \"x\", required = 1 }]",
       "methods.a.params.required must be true or false"},
      {"params = [{ name = \"x\" }, { name = \"x\" }]", "parameter x twice"},
  };
  for (const Case& c : cases) {
    const std::string error = error_of("[methods.a]\ncommand = \"true\"\n" + c.line + "\n");
    EXPECT_EQ(error.rfind(file_.string() + ":3:", 0), 0u) << c.line << " -> " << error;
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.line << " -> " << error;
  }
  std::string error = error_of("description = 1\n[methods.a]\ncommand = \"true\"\n");
  EXPECT_EQ(error.rfind(at(1, 15), 0), 0u) << error;
  error = error_of("methods = 1\n");
  EXPECT_NE(error.find("methods must be a table"), std::string::npos) << error;
  error = error_of("[methods]\na = 1\n");
  EXPECT_EQ(error.rfind(at(2, 5), 0), 0u) << error;
  EXPECT_NE(error.find("methods.a must be a table"), std::string::npos) << error;
}

TEST_F(ManifestTest, NoMethods) {
  std::string error = error_of("");
  EXPECT_EQ(error.rfind(at(1, 1), 0), 0u) << error;
  EXPECT_NE(error.find("no methods"), std::string::npos) << error;
  error = error_of("description = \"x\"\n[methods]\n");
  EXPECT_EQ(error.rfind(at(2, 1), 0), 0u) << error;
  EXPECT_NE(error.find("no methods"), std::string::npos) << error;
}

TEST_F(ManifestTest, UnreadableFile) {
  try {
    load_manifest(dir_ / "missing.toml");
    ADD_FAILURE() << "loaded a missing file";
  } catch (const ManifestError& error) {
    EXPECT_EQ(std::string(error.what()),
              (dir_ / "missing.toml").string() + ": cannot open: No such file or directory");
  }
  EXPECT_THROW(load_manifest(dir_), ManifestError);
}

TEST_F(ManifestTest, ParsesTextWithoutAFile) {
  const Manifest manifest = parse_manifest("[methods.a]\ncommand = \"true\"\n", dir_ / "x.toml");
  EXPECT_EQ(manifest.methods.at(0).working_dir, dir_);
  try {
    parse_manifest("[methods.a]\n", dir_ / "x.toml");
    ADD_FAILURE() << "parsed";
  } catch (const ManifestError& error) {
    EXPECT_EQ(std::string(error.what()).rfind((dir_ / "x.toml").string() + ":1:1: ", 0), 0u);
  }
}

#ifdef PHOTON_SOURCE_DIR
TEST_F(ManifestTest, TheExampleLoads) {
  const Manifest manifest =
      load_manifest(fs::path(PHOTON_SOURCE_DIR) / "examples/scripts/photon.toml");
  std::vector<std::string> names;
  for (const ExecMethod& method : manifest.methods) names.push_back(method.info.name);
  EXPECT_EQ(names, (std::vector<std::string>{"hello", "moveTask", "confirmDelete"}));
  EXPECT_TRUE(manifest.methods[2].interactive);
}
#endif

}  // namespace
}  // namespace photon::core
