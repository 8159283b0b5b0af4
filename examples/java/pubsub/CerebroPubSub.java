/*
 * Author:  Cerebro team
 * Date:    2026-11-24
 * Subject: The main app's side of Cerebro's pub-sub: publish requests to RabbitMQ, read results.
 * Tagline: Drop the question in the box and let the answer find its way home.
 *
 * Uses the standard RabbitMQ Java client (Debian: librabbitmq-client-java, or Maven
 * com.rabbitmq:amqp-client). Build and run:
 *
 *   javac -cp /usr/share/java/amqp-client.jar -d out CerebroPubSub.java
 *   java -cp out:/usr/share/java/amqp-client.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar \
 *        CerebroPubSub amqp://guest:guest@127.0.0.1:5672/%2F 100
 *
 * Arguments: broker URI, number of requests, then optionally the requests exchange, the
 * results exchange and the routing key (default cerebro.requests, cerebro.results,
 * rent_predictor.predict). Environment CEREBRO_EXAMPLE_PAYLOAD overrides the JSON body.
 *
 * The contract (see cerebro/pubsub/contract.py):
 *  - request: exchange "cerebro.requests" (topic, durable), routing key "<module>.<function>",
 *    body = the JSON the REST endpoint takes, persistent, properties message_id (idempotency
 *    key) and correlation_id, optionally reply_to (a queue name: the result goes there);
 *  - result: exchange "cerebro.results" (topic, durable), routing key
 *    "<module>.<function>.<succeeded|failed>", JSON {"status", "module", "function",
 *    "message_id", "correlation_id", "result" | "error"}, header x-cerebro-status, same
 *    correlation_id and message_id; at-least-once: deduplicate by message_id;
 *  - bad requests: a failed result, and the request in the queue "cerebro.dlx" with headers
 *    x-cerebro-error-type, x-cerebro-error, x-cerebro-stage, x-cerebro-attempts.
 *
 * This program declares a durable results queue of its own, bound to the results exchange,
 * publishes with publisher confirms and mandatory=true (an unroutable request is an error:
 * start `cerebro subscribe` or `cerebro subscribe --declare-only` first), then waits for
 * every correlation id. Prints one line per failed result and a summary; exit code 0 when
 * every request got a succeeded result.
 */

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DeliverCallback;
import com.rabbitmq.client.MessageProperties;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

public final class CerebroPubSub {

    private static final String DEFAULT_PAYLOAD =
        "{\"city\": \"mumbai\", \"locality\": \"Andheri West\", \"bhk\": 2, \"area_sqft\": 950,"
        + " \"bathrooms\": 2, \"floor\": 7, \"total_floors\": 14, \"age_years\": 6}";

    private CerebroPubSub() {
    }

    public static void main(String[] args) throws Exception {
        String uri = args.length > 0 ? args[0] : "amqp://guest:guest@127.0.0.1:5672/%2F";
        int count = args.length > 1 ? Integer.parseInt(args[1]) : 10;
        String requests = args.length > 2 ? args[2] : "cerebro.requests";
        String results = args.length > 3 ? args[3] : "cerebro.results";
        String routingKey = args.length > 4 ? args[4] : "rent_predictor.predict";
        String payload = System.getenv().getOrDefault("CEREBRO_EXAMPLE_PAYLOAD", DEFAULT_PAYLOAD);

        ConnectionFactory factory = new ConnectionFactory();
        factory.setUri(uri);
        factory.setAutomaticRecoveryEnabled(true);   // reconnects after a broker restart
        try (Connection connection = factory.newConnection("main-app-example")) {
            Channel channel = connection.createChannel();

            // Our own durable results queue: results wait here while the main app is down.
            channel.exchangeDeclare(results, "topic", true);
            String resultsQueue = results + ".main-app-example";
            channel.queueDeclare(resultsQueue, true, false, false, null);
            String[] parts = routingKey.split("\\.", 2);
            channel.queueBind(resultsQueue, results, parts[0] + "." + parts[1] + ".*");

            Set<String> waiting = ConcurrentHashMap.newKeySet();
            CountDownLatch done = new CountDownLatch(count);
            AtomicInteger failed = new AtomicInteger();
            DeliverCallback onResult = (tag, delivery) -> {
                String cid = delivery.getProperties().getCorrelationId();
                Object status = delivery.getProperties().getHeaders() == null ? null
                    : delivery.getProperties().getHeaders().get("x-cerebro-status");
                String body = new String(delivery.getBody(), StandardCharsets.UTF_8);
                if (cid != null && waiting.remove(cid)) {      // a duplicate is ignored
                    if (!"succeeded".equals(String.valueOf(status))) {
                        failed.incrementAndGet();
                        System.out.println("failed " + cid + ": " + body);
                    }
                    done.countDown();
                }
                channel.basicAck(delivery.getEnvelope().getDeliveryTag(), false);
            };
            channel.basicQos(500);
            channel.basicConsume(resultsQueue, false, onResult, consumerTag -> { });

            Channel publisher = connection.createChannel();
            publisher.confirmSelect();
            publisher.addReturnListener(r -> System.err.println(
                "request returned unroutable (" + r.getReplyText() + "): is cerebro subscribe "
                + "running for " + r.getRoutingKey() + "?"));
            long started = System.nanoTime();
            for (int i = 0; i < count; i++) {
                String id = UUID.randomUUID().toString();
                waiting.add(id);
                AMQP.BasicProperties props = MessageProperties.PERSISTENT_BASIC.builder()
                    .contentType("application/json")
                    .messageId(id)          // idempotency key
                    .correlationId(id)      // copied onto the result
                    .build();
                publisher.basicPublish(requests, routingKey, true, props,
                                       payload.getBytes(StandardCharsets.UTF_8));
            }
            publisher.waitForConfirmsOrDie(30_000);

            boolean all = done.await(60, TimeUnit.SECONDS);
            double seconds = (System.nanoTime() - started) / 1e9;
            System.out.printf("%d requests, %d results (%d failed) in %.2fs: %.0f req/s%n",
                              count, count - waiting.size(), failed.get(), seconds,
                              (count - waiting.size()) / seconds);
            System.exit(all && failed.get() == 0 ? 0 : 1);
        }
    }
}
