Console.WriteLine("worker: under construction");
