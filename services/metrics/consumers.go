package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// ConsumerCollector reports JetStream consumers' backlog when scraped:
// for a worker fleet's task consumer, pending is the queue depth of its
// kind and pool and ack-pending the tasks in flight across the whole fleet
// (what an autoscaler wants; gantry_tasks_in_flight is one process's share).
type ConsumerCollector struct {
	js      jetstream.JetStream
	timeout time.Duration

	mu        sync.Mutex
	consumers [][2]string // stream, consumer

	pending, ackPending, redelivered, waiting, up *prometheus.Desc
}

// NewConsumerCollector reports on the consumers added with Watch.
func NewConsumerCollector(js jetstream.JetStream) *ConsumerCollector {
	l := []string{"stream", "consumer"}
	return &ConsumerCollector{
		js: js, timeout: 2 * time.Second,
		pending:     prometheus.NewDesc("gantry_consumer_pending", "Messages on the consumer's stream not yet delivered (queue depth).", l, nil),
		ackPending:  prometheus.NewDesc("gantry_consumer_ack_pending", "Messages delivered and not yet acknowledged (in flight).", l, nil),
		redelivered: prometheus.NewDesc("gantry_consumer_redelivered", "Messages delivered more than once and not yet acknowledged.", l, nil),
		waiting:     prometheus.NewDesc("gantry_consumer_waiting_pulls", "Pull requests waiting: idle workers ready for work.", l, nil),
		up:          prometheus.NewDesc("gantry_consumer_info_up", "1 when the consumer's info could be read at this scrape.", l, nil),
	}
}

// Watch adds a consumer to report on.
func (c *ConsumerCollector) Watch(stream, consumer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.consumers {
		if w == [2]string{stream, consumer} {
			return
		}
	}
	c.consumers = append(c.consumers, [2]string{stream, consumer})
}

// Describe implements prometheus.Collector.
func (c *ConsumerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.ackPending, c.redelivered, c.waiting, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one info request per consumer.
func (c *ConsumerCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	watched := append([][2]string(nil), c.consumers...)
	c.mu.Unlock()
	for _, w := range watched {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		info, err := c.info(ctx, w[0], w[1])
		cancel()
		if err != nil {
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0, w[0], w[1])
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1, w[0], w[1])
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending), w[0], w[1])
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(info.NumAckPending), w[0], w[1])
		ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered), w[0], w[1])
		ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(info.NumWaiting), w[0], w[1])
	}
}

func (c *ConsumerCollector) info(ctx context.Context, stream, consumer string) (*jetstream.ConsumerInfo, error) {
	cons, err := c.js.Consumer(ctx, stream, consumer)
	if err != nil {
		return nil, err
	}
	return cons.Info(ctx)
}
