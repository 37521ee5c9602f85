// placeholder: filled in by the method-hosting work.
#include <gtest/gtest.h>
