// The daemon's lines as the dashboard's web streams carry them: which lines of an event stream
// become Server-Sent Events, and what a WebSocket answers a binary message with. The transport
// (net/web_streams.hpp) is given these and knows no protocol itself.
#pragma once

#include "channels/photon_core_form.hpp"
#include "net/web_streams.hpp"

#include <optional>
#include <string_view>

namespace photon::ui {

// The event for `line`, a line the dispatcher sends an event stream (without its newline): a
// channel_message has its eventId as the event's id (so a browser reconnecting with it gets what
// it missed, as a socket client's lastEventId does); an events_gap is a `photon-gap` event; an
// error (only a refused subscribe sends one) is a `photon-error` event that ends the stream (the
// browser reconnects after `retry`); any other line (a subscribe's reply) is nothing. The event's
// id points into `line`.
std::optional<net::StreamEvent> stream_event_of(std::string_view line);

// The number of the channel_message `line` (its id without "ch_"), or empty for another line.
std::string_view channel_message_number(std::string_view line);
// The eventId of the channel_message `line`, or empty.
std::string_view channel_message_event_id(std::string_view line);

// The event for `line` on a stream of photon-core's HTTP broker (GET /channels): a
// channel_message is an event of the default type whose data is the message in photon-core's form
// (channels/photon_core_form.hpp), from `sender`; an error ends the stream as a `photon-error`
// event; any other line is nothing.
std::optional<net::StreamEvent> photon_core_event_of(std::string_view line,
                                                     const core::PhotonCoreSender& sender);

// stream_event_of, and the protocol's error line for a WebSocket's binary message.
net::WebStreamProtocol web_stream_protocol();

}  // namespace photon::ui
