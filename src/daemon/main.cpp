// photond's entry point; the command line itself is in command_line.cpp.
#include "daemon/command_line.hpp"

int main(int argc, char** argv) { return photon::daemon::photond_main(argc, argv); }
