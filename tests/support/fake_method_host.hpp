// A method host for tests of what calls methods (dispatcher, scheduler, webhooks): it records each
// call started, and the test plays the method's part through the call's observer.
#pragma once

#include "methods/method_host.hpp"

#include <memory>
#include <utility>
#include <vector>

namespace photon::testing {

class FakeMethodHost : public core::MethodHost {
 public:
  explicit FakeMethodHost(std::vector<core::MethodInfo> methods) : methods_(std::move(methods)) {}

  const std::vector<core::MethodInfo>& methods() const override { return methods_; }
  void start(core::CallRequest request, std::shared_ptr<core::CallObserver> observer) override {
    calls.push_back({std::move(request), std::move(observer)});
  }
  core::HostStats stats() const override { return {calls.size(), 0}; }
  void cancel_all(std::function<void()> done) override { done(); }

  struct Started {
    core::CallRequest request;
    std::shared_ptr<core::CallObserver> observer;
  };
  std::vector<Started> calls;

 private:
  std::vector<core::MethodInfo> methods_;
};

}  // namespace photon::testing
